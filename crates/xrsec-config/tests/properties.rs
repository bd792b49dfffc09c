//! Properties: rendering a random valid configuration and parsing it back
//! gives the same model; `parse_str` never panics, whatever the input.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use xrsec_config::*;

/// A small deterministic generator, so that one proptest `u64` drives the
/// shape of a whole configuration.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    /// A non-empty ordered subset without duplicates.
    fn subset<T: Copy + PartialEq>(&mut self, v: &[T]) -> Vec<T> {
        let mut out = Vec::new();
        for _ in 0..=self.below(v.len()) {
            let x = self.pick(v);
            if !out.contains(&x) {
                out.push(x);
            }
        }
        out
    }
    fn word(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
    fn addr(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.next() as u32)
    }
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const KEYCH: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*()-_=+.,";

fn name(r: &mut Rng, prefix: &str, i: usize) -> String {
    let n = r.below(6);
    format!("{prefix}{i}_{}", r.word(ALNUM, n))
}

fn nref(name: &str) -> NameRef {
    NameRef {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn random_config(seed: u64) -> Config {
    let mut r = Rng(seed | 1);
    let mut c = Config::default();
    for i in 0..r.range(1, 3) as usize {
        let encryption = r.subset(IkeEncryption::ALL);
        let integrity = if encryption.iter().any(|e| !e.is_aead()) {
            r.subset(IkeIntegrity::ALL)
        } else {
            Vec::new()
        };
        let p = Ikev2Proposal {
            name: name(&mut r, "prop", i),
            encryption,
            integrity,
            prf: r.subset(Prf::ALL),
            dh_groups: r.subset(DhGroup::ALL),
            ..Default::default()
        };
        c.proposals.insert(p).unwrap();
    }
    let prop_names: Vec<String> = c.proposals.names().map(String::from).collect();
    for i in 0..r.range(1, 2) as usize {
        let mut match_local = Vec::new();
        for _ in 0..r.below(3) {
            let a = r.addr();
            if !match_local.iter().any(|(x, _)| *x == a) {
                match_local.push((a, Span::default()));
            }
        }
        let proposals = r.subset(&(0..prop_names.len()).collect::<Vec<_>>());
        c.policies
            .insert(Ikev2Policy {
                name: name(&mut r, "pol", i),
                match_local,
                match_fvrf_any: r.coin(),
                proposals: proposals.iter().map(|&j| nref(&prop_names[j])).collect(),
                ..Default::default()
            })
            .unwrap();
    }
    for i in 0..r.range(1, 3) as usize {
        let mut k = Keyring {
            name: name(&mut r, "kr", i),
            ..Default::default()
        };
        for j in 0..r.range(1, 3) as usize {
            let net = Ipv4Net::new(r.addr(), r.range(0, 32) as u8).unwrap();
            let key = |r: &mut Rng| {
                let n = r.range(16, 40) as usize;
                PreSharedKey::new(r.word(KEYCH, n))
            };
            let mut p = KeyringPeer {
                name: name(&mut r, "peer", j),
                address: Some((net, Span::default())),
                pre_shared_key: Some(key(&mut r)),
                ..Default::default()
            };
            if r.coin() {
                p.pre_shared_key_local = Some(key(&mut r));
            }
            if r.coin() {
                p.pre_shared_key_remote = Some(key(&mut r));
            }
            k.peers.insert(p).unwrap();
        }
        c.keyrings.insert(k).unwrap();
    }
    for i in 0..r.below(3) {
        let n = r.range(1, 8) as usize;
        let file = r.word(b"abcdefgh", n);
        c.trustpoints
            .insert(Trustpoint {
                name: name(&mut r, "tp", i),
                ca_certificate: Some(format!("/etc/xrsec/{file}-ca.pem")),
                certificate: Some(format!("/etc/xrsec/{file}.pem")),
                private_key: Some(format!("/etc/xrsec/{file}.key")),
                ..Default::default()
            })
            .unwrap();
    }
    let kr_names: Vec<String> = c.keyrings.names().map(String::from).collect();
    let tp_names: Vec<String> = c.trustpoints.names().map(String::from).collect();
    for i in 0..r.range(1, 3) as usize {
        let methods: &[AuthMethod] = if tp_names.is_empty() {
            &[AuthMethod::PreShared]
        } else {
            AuthMethod::ALL
        };
        let auth_local = r.pick(methods);
        let auth_remote = r.coin().then(|| r.pick(methods));
        let mut ids = Vec::new();
        if r.coin() {
            ids.push(RemoteIdentity::Address(
                Ipv4Net::new(r.addr(), r.range(0, 32) as u8).unwrap(),
            ));
        }
        if r.coin() {
            let n = r.range(1, 8) as usize;
            ids.push(RemoteIdentity::Fqdn(format!(
                "{}.example.net",
                r.word(b"abcxyz", n)
            )));
        }
        let mut p = Ikev2Profile {
            name: name(&mut r, "ike", i),
            keyring: Some(nref(&kr_names[r.below(kr_names.len())])),
            lifetime_secs: r.coin().then(|| r.range(120, 86_400) as u32),
            auth_local: Some(auth_local),
            auth_remote,
            match_identity_remote: ids,
            dpd: r.coin().then(|| Dpd {
                interval_secs: r.range(1, 3600) as u32,
                retries: r.range(1, 100) as u32,
            }),
            ..Default::default()
        };
        if p.uses_rsa() {
            p.pki_trustpoint = Some(nref(&tp_names[r.below(tp_names.len())]));
        }
        c.ikev2_profiles.insert(p).unwrap();
    }
    for i in 0..r.range(1, 3) as usize {
        let mut transforms = Vec::new();
        for _ in 0..r.range(1, 3) {
            let cipher = r.pick(EspCipher::ALL);
            let integrity = (!cipher.is_aead()).then(|| r.pick(EspIntegrity::ALL));
            let t = EspTransform { cipher, integrity };
            if !transforms.contains(&t) {
                transforms.push(t);
            }
        }
        c.transform_sets
            .insert(TransformSet {
                name: name(&mut r, "ts", i),
                mode: r.coin().then_some(IpsecMode::Tunnel),
                transforms,
                ..Default::default()
            })
            .unwrap();
    }
    let ike_names: Vec<String> = c.ikev2_profiles.names().map(String::from).collect();
    let ts_names: Vec<String> = c.transform_sets.names().map(String::from).collect();
    for i in 0..r.range(1, 3) as usize {
        c.ipsec_profiles
            .insert(IpsecProfile {
                name: name(&mut r, "ips", i),
                ikev2_profile: Some(nref(&ike_names[r.below(ike_names.len())])),
                transform_set: Some(nref(&ts_names[r.below(ts_names.len())])),
                pfs: r.coin().then(|| r.pick(PfsGroup::ALL)),
                sa_lifetime_secs: r.coin().then(|| r.range(10, 604_800) as u32),
                sa_lifetime_kilobytes: r.coin().then(|| r.range(2560, 4_294_967_295)),
                replay_window: r.coin().then(|| 64 * r.range(1, 64) as u32),
                ..Default::default()
            })
            .unwrap();
    }
    let ips_names: Vec<String> = c.ipsec_profiles.names().map(String::from).collect();
    let mut numbers = Vec::new();
    for _ in 0..r.below(4) {
        let n = r.range(0, 65_535) as u32;
        if numbers.contains(&n) {
            continue;
        }
        numbers.push(n);
        let ips = c
            .ipsec_profiles
            .get(&ips_names[r.below(ips_names.len())])
            .unwrap();
        let ike = c
            .ikev2_profiles
            .get(&ips.ikev2_profile.as_ref().unwrap().name)
            .unwrap();
        let kr = c.keyrings.get(&ike.keyring.as_ref().unwrap().name).unwrap();
        // A destination the keyring covers: a peer's own address.
        let peer = &kr.peers.as_slice()[r.below(kr.peers.len())];
        let dest = peer.address.unwrap().0.addr;
        // A source some policy matches.
        let pol = &c.policies.as_slice()[r.below(c.policies.len())];
        let source = match pol.match_local.first() {
            Some((a, _)) if r.coin() => TunnelSource::Address(*a),
            _ if r.coin() && c.policies.iter().any(|p| p.match_local.is_empty()) => {
                TunnelSource::Address(r.addr())
            }
            _ => TunnelSource::Interface(format!("eth{}", r.below(10))),
        };
        let description = r.coin().then(|| {
            let n = r.range(0, 20) as usize;
            format!("d{}x", r.word(b"ab c-D9 ", n))
        });
        let itf = TunnelInterface {
            name: format!("tunnel-ip{n}"),
            number: n,
            description,
            ipv4_address: Some(Ipv4Net::new(r.addr(), r.range(1, 32) as u8).unwrap()),
            tunnel_mode: Some(TunnelMode::IpsecIpv4),
            source: Some((source, Span::default())),
            destination: Some((dest, Span::default())),
            protection: Some(nref(&ips.name)),
            mtu: r.coin().then(|| r.range(576, 9216) as u16),
            shutdown: r.below(5) == 0,
            ..Default::default()
        };
        c.interfaces.insert(itf).unwrap();
    }
    for _ in 0..r.below(4) {
        if numbers.is_empty() {
            break;
        }
        let len = r.range(0, 32) as u8;
        let prefix = Ipv4Net::new(Ipv4Net::new(r.addr(), len).unwrap().network(), len).unwrap();
        let itf = format!("tunnel-ip{}", numbers[r.below(numbers.len())]);
        if c.static_routes
            .iter()
            .any(|s| s.prefix == prefix && s.interface.name == itf)
        {
            continue;
        }
        c.static_routes.push(StaticRoute {
            prefix,
            interface: nref(&itf),
            span: Span::default(),
        });
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rendering_then_parsing_gives_back_the_same_model(seed in any::<u64>()) {
        let cfg = random_config(seed);
        let text = cfg.to_running_config(Secrets::Shown);
        let parsed = parse_str("rendered.conf", &text);
        prop_assert!(!parsed.has_errors(), "{}\n{}", text, parsed.render_diagnostics());
        let back = parsed.config.unwrap();
        prop_assert!(cfg.same_settings(&back), "{}\n{:#?}\n{:#?}", text, cfg, back);
        prop_assert_eq!(back.to_running_config(Secrets::Shown), text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "(?s).{0,400}") {
        let p = parse_str("fuzz", &text);
        let _ = p.render_diagnostics();
    }

    #[test]
    fn parse_never_panics_on_lines_made_of_config_words(
        lines in prop::collection::vec(
            prop::collection::vec(
                prop::sample::select(vec![
                    "ikev2", "proposal", "policy", "profile", "keyring", "peer", "ipsec", "crypto",
                    "ca", "trustpoint", "transform-set", "interface", "tunnel-ip1", "router", "static",
                    "address-family", "ipv4", "unicast", "set", "match", "address", "local", "fvrf",
                    "any", "exit", "!", "end", "pre-shared-key", "local", "10.0.0.0/8", "1.2.3.4",
                    "255.255.255.0", "tunnel", "source", "destination", "mode", "protection", "é",
                    "Router(config)#", "\t", "sha-256", "aes-gcm-256", "group20", "", "99999999999999999999",
                ]),
                0..12,
            ),
            0..40,
        )
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let p = parse_str("fuzz", &text);
        let _ = p.render_diagnostics();
    }

    #[test]
    fn parse_never_panics_on_mutated_seed_texts(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, "(?s).{0,12}"), 1..8),
    ) {
        let name = ["router1-running.txt", "router2-running.txt", "router1-oneline.txt", "router2-oneline.txt"][which];
        let path = format!("{}/../../tests/data/seed/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut text: Vec<char> = std::fs::read_to_string(path).unwrap().chars().collect();
        for (at, op, s) in edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => { text.splice(i..i, s.chars()); }
                1 => { let end = (i + s.len()).min(text.len()); text.drain(i..end); }
                2 => { if i < text.len() { text[i] = s.chars().next().unwrap_or('\n'); } }
                _ => { let end = (i + 40).min(text.len()); let dup: Vec<char> = text[i..end].to_vec(); text.splice(i..i, dup); }
            }
        }
        let text: String = text.into_iter().collect();
        let p = parse_str(name, &text);
        let rendered = p.render_diagnostics();
        // Keys stay hidden as long as they still follow `pre-shared-key`.
        if text.lines().all(|l| !l.contains("cisco123") || l.trim_start().starts_with("pre-shared-key cisco123")) {
            prop_assert!(!rendered.contains("cisco123"), "{}", rendered);
        }
    }
}

#[test]
fn a_very_long_line_is_handled_in_bounded_time() {
    let long = format!("ikev2 proposal P prf {}\n", "x".repeat(1_000_000));
    let p = parse_str("long", &long);
    assert!(p.has_errors());
    let deep = "keyring K\n peer P\n".repeat(10_000);
    let p = parse_str("deep", &deep);
    assert!(p.has_errors());
}

#[test]
fn the_generated_bench_config_is_valid_and_quiet() {
    let text = testgen::generate_config(50);
    let p = parse_str("gen", &text);
    assert!(p.diagnostics.is_empty(), "{}", p.render_diagnostics());
    let cfg = p.config.unwrap();
    assert_eq!(cfg.tunnels().len(), 50);
    assert!(cfg.same_settings(
        &parse_str("again", &cfg.to_running_config(Secrets::Shown))
            .config
            .unwrap()
    ));
}
