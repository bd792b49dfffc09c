//! `cargo run -p xrsec-config --example check -- FILE...`: prints the
//! diagnostics of each file and, when it has no errors, its tunnel summary
//! (what `xrsec config check` will print).

fn main() {
    for f in std::env::args().skip(1) {
        let parsed = match xrsec_config::load_file(std::path::Path::new(&f)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{f}: {e}");
                continue;
            }
        };
        print!("{}", parsed.render_diagnostics());
        println!(
            "{f}: {} errors, {} warnings",
            parsed.error_count(),
            parsed.warning_count()
        );
        if let Some(c) = &parsed.config {
            for l in c.summary_lines() {
                println!("{l}");
            }
        }
    }
}
