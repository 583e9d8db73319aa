//! Criterion benchmarks: encode, decode and message ID over the draft's example messages.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use mimi_content::MimiContent;

const SENDER: &str = "mimi://example.com/u/alice-smith";
const ROOM: &str = "mimi://example.com/r/engineering_team";

/// The example messages, read from the test vectors.
fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("vector directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            stem != "status" && stem != "implied-original"
        })
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            (name, std::fs::read(&p).expect("vector file"))
        })
        .collect();
    out.sort();
    out
}

fn bench_content(c: &mut Criterion) {
    let examples = examples();
    let decoded: Vec<MimiContent> = examples
        .iter()
        .map(|(_, b)| MimiContent::decode(b).expect("valid vector"))
        .collect();
    let total: usize = examples.iter().map(|(_, b)| b.len()).sum();
    eprintln!("{} example messages, {total} bytes in all", examples.len());

    c.bench_function("decode all examples", |b| {
        b.iter(|| {
            for (_, bytes) in &examples {
                black_box(MimiContent::decode(black_box(bytes)).expect("valid"));
            }
        })
    });
    c.bench_function("encode all examples", |b| {
        b.iter(|| {
            for msg in &decoded {
                black_box(black_box(msg).encode());
            }
        })
    });
    c.bench_function("message id all examples", |b| {
        b.iter(|| {
            for msg in &decoded {
                black_box(black_box(msg).message_id(SENDER, ROOM));
            }
        })
    });
    let multipart = examples
        .iter()
        .position(|(name, _)| name == "multipart-3")
        .expect("multipart-3 vector");
    c.bench_function("decode multipart-3 (716 bytes)", |b| {
        b.iter(|| black_box(MimiContent::decode(black_box(&examples[multipart].1)).expect("valid")))
    });
}

// criterion_group! expands to an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_content);
}

criterion_main!(group::benches);
