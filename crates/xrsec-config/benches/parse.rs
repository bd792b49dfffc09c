//! Parses a generated 10,000-tunnel configuration; throughput in lines.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn parse_10k_tunnels(c: &mut Criterion) {
    let text = xrsec_config::testgen::generate_config(10_000);
    let lines = text.lines().count() as u64;
    eprintln!(
        "generated 10,000-tunnel configuration: {lines} lines, {} bytes",
        text.len()
    );
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines));
    group.sample_size(10);
    group.bench_function("10k_tunnels", |b| {
        b.iter(|| {
            let parsed = xrsec_config::parse_str("bench.conf", black_box(&text));
            assert!(!parsed.has_errors());
            parsed
        })
    });
    group.finish();
}

criterion_group!(benches, parse_10k_tunnels);
criterion_main!(benches);
