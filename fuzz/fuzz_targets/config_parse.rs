//! The configuration parser must never panic, whatever text a user pastes:
//! every input ends in a model or in diagnostics. Invalid UTF-8 is the loader's
//! concern (`load_file` reports it), so the target feeds text only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = xrsec_config::parse_str("fuzz.conf", text);
        // Rendering runs too: diagnostics on odd input must format cleanly, and a
        // model that parsed must print back as text that parses to the same model.
        let _ = parsed.render_diagnostics();
        if let Some(config) = &parsed.config {
            let text = config.to_running_config(xrsec_config::Secrets::Shown);
            let again = xrsec_config::parse_str("rendered.conf", &text);
            let reparsed = again.config.as_ref().unwrap_or_else(|| {
                panic!(
                    "rendered text does not parse:\n{text}\n{}",
                    again.render_diagnostics()
                )
            });
            assert!(
                config.same_settings(reparsed),
                "round trip changed the model:\n{text}"
            );
        }
    }
});
