//! A mutation fuzzer over every loader of a file that a user, or a stranger, hands genie: prompt
//! pictures, checkpoints (`genie.json` and the safetensors files), dataset shards and manifests,
//! recordings (`start.json`, `events.jsonl`, `frames.rgb`, prompt PNGs), key bindings, keys bound
//! to latents (`keys.json`) and training recipes.
//!
//! Real files are made first, then mutated: bit flips, bytes set to edge values, truncations,
//! deleted and repeated ranges, huge little-endian numbers, and, inside JSON (whole files or a
//! safetensors header), values replaced by huge numbers or other types, keys removed or
//! duplicated, deep nesting. Every load must end in a clear error naming the file or in a
//! correct load; none may panic, and none may allocate past a bound (a counting allocator
//! records the largest request; the process's peak memory is checked at the end).
//!
//! Cases per loader: `GENIE_FUZZ_CASES` (default 1,000: 5,000 in all, a few seconds).
#![allow(unsafe_code)] // the counting allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use genie::app::input::Bindings;
use genie::data::{DataSpec, Dataset, write_dataset};
use genie::model::tokenizer::TokenizerConfig;
use genie::model::{DynamicsConfig, Genie, GenieConfig, LamConfig, StConfig};
use genie::session::hero::HeroChoice;
use genie::session::prompt::Prompt;
use genie::session::record::{EventKind, Recorder, Recording, StartState};
use image::{ImageFormat, Rgba, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Records the largest single allocation the process asks Rust's allocator for.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1 << 20;

fn cases() -> usize {
    std::env::var("GENIE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Mutations of bytes and of JSON, from a seeded generator (a failing case can be rerun).
struct Mutator {
    rng: ChaCha8Rng,
    /// What was done to the current case, for the failure message.
    done: Vec<String>,
}

impl Mutator {
    fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            done: Vec::new(),
        }
    }

    fn bytes(&mut self, input: &[u8]) -> Vec<u8> {
        let mut b = input.to_vec();
        for _ in 0..self.rng.random_range(1..=3) {
            if b.is_empty() {
                b.push(self.rng.random());
                continue;
            }
            let at = self.rng.random_range(0..b.len());
            match self.rng.random_range(0..8) {
                0 => {
                    b[at] ^= 1 << self.rng.random_range(0..8);
                    self.done.push(format!("flip a bit at {at}"));
                }
                1 => {
                    let v = [0x00, 0xFF, 0x7F, 0x80][self.rng.random_range(0..4)];
                    b[at] = v;
                    self.done.push(format!("byte {at} = {v:#x}"));
                }
                2 => {
                    b.truncate(at);
                    self.done.push(format!("truncate at {at}"));
                }
                3 => {
                    let end = (at + self.rng.random_range(1..64)).min(b.len());
                    b.drain(at..end);
                    self.done.push(format!("delete {at}..{end}"));
                }
                4 => {
                    let end = (at + self.rng.random_range(1..256)).min(b.len());
                    let copy = b[at..end].to_vec();
                    b.splice(at..at, copy);
                    self.done.push(format!("repeat {at}..{end}"));
                }
                5 => {
                    // A length or count field replaced by a huge number.
                    let v: u64 =
                        [u64::MAX, 1 << 40, 1 << 31, i64::MAX as u64][self.rng.random_range(0..4)];
                    let at = at.min(b.len().saturating_sub(8));
                    for (i, byte) in v.to_le_bytes().iter().enumerate() {
                        if let Some(x) = b.get_mut(at + i) {
                            *x = *byte;
                        }
                    }
                    self.done.push(format!("u64 {v} at {at}"));
                }
                6 => {
                    let n = self.rng.random_range(1..512);
                    b.extend((0..n).map(|_| self.rng.random::<u8>()));
                    self.done.push(format!("append {n} random bytes"));
                }
                _ => {
                    let v = self.rng.random();
                    b[at] = v;
                    self.done.push(format!("byte {at} = {v}"));
                }
            }
        }
        b
    }

    /// A value that a field should not hold.
    fn hostile_value(&mut self) -> Value {
        let deep = "[".repeat(300) + &"]".repeat(300);
        let values = [
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(1_000_000_000_000u64),
            serde_json::json!(1_000_000),
            serde_json::json!(-1),
            serde_json::json!(0),
            serde_json::json!(1e308),
            serde_json::json!(-0.5),
            serde_json::json!("1000000"),
            serde_json::json!(""),
            serde_json::json!([]),
            serde_json::json!({}),
            Value::Null,
            serde_json::json!(true),
            serde_json::json!([1, 2, 3]),
            Value::String(deep),
        ];
        values[self.rng.random_range(0..values.len())].clone()
    }

    fn json(&mut self, text: &[u8]) -> Vec<u8> {
        let Ok(mut doc) = serde_json::from_slice::<Value>(text) else {
            return self.bytes(text);
        };
        match self.rng.random_range(0..10) {
            0 | 1 => return self.bytes(text),
            2 => {
                // A key written twice, the second time with a hostile value.
                let mut out = serde_json::to_string(&doc).unwrap();
                let keys = object_keys(&doc);
                if let Some(key) = keys.get(self.rng.random_range(0..keys.len().max(1))) {
                    let needle = format!("{}:", serde_json::to_string(key).unwrap());
                    if let Some(at) = out.find(&needle) {
                        let value = self.hostile_value();
                        out.insert_str(at, &format!("{needle}{value},"));
                        self.done.push(format!("duplicate key {key:?} = {value}"));
                    }
                }
                return out.into_bytes();
            }
            3 => {
                let pointers = pointers(&doc, "");
                let p = &pointers[self.rng.random_range(0..pointers.len())];
                if let Some((parent, key)) = p.rsplit_once('/')
                    && let Some(Value::Object(map)) = doc.pointer_mut(parent)
                {
                    map.remove(key);
                    self.done.push(format!("remove {p}"));
                }
            }
            _ => {
                let pointers = pointers(&doc, "");
                let p = pointers[self.rng.random_range(0..pointers.len())].clone();
                let value = self.hostile_value();
                let shown = value.to_string().chars().take(40).collect::<String>();
                if let Some(slot) = doc.pointer_mut(&p) {
                    *slot = value;
                }
                self.done.push(format!("{p} = {shown}"));
            }
        }
        serde_json::to_vec(&doc).unwrap()
    }

    /// A safetensors file with its JSON header mutated (shapes, dtypes, offsets), the data kept.
    fn safetensors_header(&mut self, bytes: &[u8]) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = self.json(&bytes[8..8 + n]);
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }
}

/// Every JSON pointer into `v` (the root excluded).
fn pointers(v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                out.extend(pointers(child, &p));
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                out.extend(pointers(child, &p));
            }
        }
        _ => {}
    }
    if out.is_empty() && at.is_empty() {
        out.push(String::new());
    }
    out
}

fn object_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, child)| std::iter::once(k.clone()).chain(object_keys(child)))
            .collect(),
        Value::Array(items) => items.iter().flat_map(object_keys).collect(),
        _ => Vec::new(),
    }
}

/// The smallest world model of the right layout (16×16 frames, four tokens a frame).
fn tiny_config() -> GenieConfig {
    let st = StConfig::new(16, 1, 2);
    GenieConfig {
        tokenizer: TokenizerConfig {
            image_size: 16,
            patch: 8,
            codebook_size: 8,
            latent_dim: 4,
            context_frames: 4,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        lam: LamConfig {
            image_size: 16,
            patch: 8,
            latent_dim: 4,
            context_frames: 4,
            conv_width: 4,
            encoder: st.clone(),
            decoder: st.clone(),
            ..Default::default()
        },
        dynamics: DynamicsConfig {
            vocab_size: 8,
            tokens_per_frame: 4,
            num_actions: 8,
            context_frames: 4,
            st,
            ..Default::default()
        },
        calibration: Some([("left".to_string(), 3), ("jump".to_string(), 5)].into()),
        ..Default::default()
    }
}

/// Copies the files of `base` into the case's folder `dir` and mutates one of `files`, picked
/// at random: `json` as JSON, a safetensors file mostly in its header, anything else as bytes.
fn mutate_one_file(m: &mut Mutator, base: &Path, dir: &Path, files: &[&str], json: &str) {
    copy_dir(base, dir);
    let name = files[m.rng.random_range(0..files.len())];
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap();
    let mutated = if name == json {
        m.json(&bytes)
    } else if name.ends_with(".safetensors") && m.rng.random_bool(0.6) {
        m.safetensors_header(&bytes)
    } else {
        m.bytes(&bytes)
    };
    std::fs::write(&path, mutated).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Runs `cases()` cases of one loader; `case` mutates a fresh copy of the files and loads them,
/// returning `Err(why)` when the load went wrong in a way that is not a clear error. Panics are
/// caught and reported with the case's mutations; the largest allocation must stay under
/// `bound` bytes.
fn fuzz(
    name: &str,
    seed: u64,
    bound: usize,
    mut case: impl FnMut(&mut Mutator, &Path) -> Result<bool, String>,
) {
    // One loader at a time, so the largest allocation is this loader's own.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    LARGEST.store(0, Ordering::SeqCst);
    let scratch = tempfile::tempdir().unwrap();
    let (mut loaded, mut refused) = (0, 0);
    for i in 0..cases() {
        let dir = scratch.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = Mutator::new(seed * 1_000_003 + i as u64);
        match catch_unwind(AssertUnwindSafe(|| case(&mut m, &dir))) {
            Ok(Ok(true)) => loaded += 1,
            Ok(Ok(false)) => refused += 1,
            Ok(Err(why)) => panic!("{name} case {i} ({}): {why}", m.done.join("; ")),
            Err(_) => panic!("{name} case {i} ({}) panicked", m.done.join("; ")),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let largest = LARGEST.load(Ordering::SeqCst);
    eprintln!(
        "{name}: {} cases, {loaded} loaded, {refused} refused with an error, largest allocation {:.1} MiB",
        cases(),
        largest as f64 / MIB as f64
    );
    assert!(
        largest <= bound,
        "{name}: an allocation of {largest} bytes, past the bound of {bound}"
    );
    assert!(
        refused > 0,
        "{name}: no mutation was refused: the mutator did nothing"
    );
}

/// An error must name the file it is about: one of `files`, or another in the case's folder
/// (a manifest may name a shard that is not there).
fn names_file(err: &str, files: &[&str]) -> Result<bool, String> {
    if files.iter().any(|f| err.contains(f)) || err.contains(std::env::temp_dir().to_str().unwrap())
    {
        Ok(false)
    } else {
        Err(format!("the error does not name the file: {err}"))
    }
}

fn picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8, 255])
    })
}

fn encoded(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let rgb = image::DynamicImage::ImageRgba8(img.clone()).to_rgb8();
    rgb.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn animated_gif() -> Vec<u8> {
    use image::{Delay, Frame, codecs::gif::GifEncoder};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for i in 0..3u8 {
            let img = RgbaImage::from_pixel(40, 30, Rgba([i * 80, 10, 200, 255]));
            enc.encode_frame(Frame::from_parts(
                img,
                0,
                0,
                Delay::from_numer_denom_ms(50, 1),
            ))
            .unwrap();
        }
    }
    out
}

#[test]
fn prompt_pictures_are_read_or_refused_never_a_panic() {
    let bases = [
        ("p.png", encoded(&picture(64, 64), ImageFormat::Png)),
        ("q.png", encoded(&picture(100, 80), ImageFormat::Png)),
        ("j.jpg", encoded(&picture(72, 64), ImageFormat::Jpeg)),
        ("b.bmp", encoded(&picture(33, 64), ImageFormat::Bmp)),
        ("w.webp", encoded(&picture(64, 48), ImageFormat::WebP)),
        ("a.gif", animated_gif()),
    ];
    // Decoding limits allow a picture of up to 256 MiB of pixels.
    fuzz("prompt pictures", 1, 300 * MIB, |m, dir| {
        let (name, bytes) = &bases[m.rng.random_range(0..bases.len())];
        let path = dir.join(name);
        std::fs::write(&path, m.bytes(bytes)).unwrap();
        // Half through the player's loader, whose hero step reads the picture at its own size.
        let loaded = if m.rng.random_bool(0.5) {
            Prompt::load(&path, 16)
        } else {
            Prompt::open(&path, 16, HeroChoice::Auto).map(|o| o.prompt)
        };
        match loaded {
            Ok(p)
                if !p.frames.is_empty()
                    && p.frames.len() <= 16
                    && p.frames.iter().all(|f| f.len() == 64 * 64 * 3) =>
            {
                Ok(true)
            }
            Ok(p) => Err(format!(
                "loaded {} frames of the wrong size",
                p.frames.len()
            )),
            Err(e) => names_file(&e.to_string(), &[name]),
        }
    });
}

#[test]
fn checkpoints_are_loaded_or_refused_never_a_panic_or_a_memory_bomb() {
    let base = tempfile::tempdir().unwrap();
    Genie::new(tiny_config(), tch::Device::Cpu)
        .unwrap()
        .save(base.path())
        .unwrap();
    let files = [
        "genie.json",
        "tokenizer.safetensors",
        "lam.safetensors",
        "dynamics.safetensors",
    ];
    fuzz("checkpoints", 2, 16 * MIB, |m, dir| {
        mutate_one_file(m, base.path(), dir, &files, "genie.json");
        match Genie::load(dir, tch::Device::Cpu) {
            Ok(g) => {
                g.config
                    .validate()
                    .map_err(|e| format!("loaded an invalid config: {e}"))?;
                Ok(true)
            }
            Err(e) => names_file(&e.to_string(), &files),
        }
    });
    let hwm = peak_memory_mib();
    assert!(hwm < 4096, "peak memory {hwm} MiB");
}

#[test]
fn datasets_are_read_or_refused_never_a_panic() {
    let base = tempfile::tempdir().unwrap();
    let spec = DataSpec {
        episodes: 3,
        clip_len: 4,
        shard_size: 2,
        threads: 1,
        ..DataSpec::default()
    };
    write_dataset(&spec, base.path(), false).unwrap();
    let files = [
        "manifest.json",
        "shard-00000.safetensors",
        "shard-00001.safetensors",
    ];
    fuzz("datasets", 3, 16 * MIB, |m, dir| {
        mutate_one_file(m, base.path(), dir, &files, "manifest.json");
        match Dataset::open(dir) {
            Ok(data) => {
                for clip in data.iter() {
                    match clip {
                        Ok(c) if c.frames.len() == data.clip_len() * 64 * 64 * 3 => {}
                        Ok(_) => return Err("a clip of the wrong size".into()),
                        Err(e) => return names_file(&e.to_string(), &files),
                    }
                }
                Ok(true)
            }
            Err(e) => names_file(&e.to_string(), &files),
        }
    });
}

#[test]
fn recordings_are_read_or_refused_never_a_panic() {
    let base = tempfile::tempdir().unwrap();
    let start = StartState {
        version: 1,
        world: "dream".into(),
        checkpoint: Some("checkpoints".into()),
        checkpoint_hash: Some("0123".into()),
        sampler: None,
        seed: 5,
        level_seed: Some(1_000_001),
        prompt_frames: 0,
        threads: Some(2),
        learn: None,
    };
    let frame = |v: u8| vec![v; 64 * 64 * 3];
    {
        let mut rec = Recorder::create(base.path(), &start, &[frame(9)]).unwrap();
        rec.push(EventKind::Reset, &frame(1)).unwrap();
        rec.push(
            EventKind::Step {
                game_action: Some("right".into()),
                latent_action: Some(2),
                sampler: None,
            },
            &frame(2),
        )
        .unwrap();
        rec.push(EventKind::Rewind { frames: 1 }, &frame(1))
            .unwrap();
    }
    let files = ["start.json", "events.jsonl", "frames.rgb", "prompt_000.png"];
    fuzz("recordings", 4, 16 * MIB, |m, dir| {
        copy_dir(base.path(), dir);
        let name = files[m.rng.random_range(0..files.len())];
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap();
        let mutated = match name {
            "start.json" => m.json(&bytes),
            "events.jsonl" => {
                let text = String::from_utf8(bytes).unwrap();
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                let i = m.rng.random_range(0..lines.len());
                lines[i] = String::from_utf8_lossy(&m.json(lines[i].as_bytes())).into_owned();
                (lines.join("\n") + "\n").into_bytes()
            }
            _ => m.bytes(&bytes),
        };
        std::fs::write(&path, mutated).unwrap();
        match Recording::open(dir) {
            Ok(r)
                if r.frames.len() == r.events.len()
                    && r.frames
                        .iter()
                        .chain(&r.prompt)
                        .all(|f| f.len() == 64 * 64 * 3) =>
            {
                Ok(true)
            }
            Ok(_) => Err("frames and events disagree, or a frame of the wrong size".into()),
            Err(e) => names_file(&e.to_string(), &files),
        }
    });
}

#[test]
fn bindings_are_read_or_refused_never_a_panic() {
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/bindings.json")).unwrap();
    fuzz("bindings", 5, 16 * MIB, |m, dir| {
        let path: PathBuf = dir.join("bindings.json");
        std::fs::write(&path, m.json(&shipped)).unwrap();
        match Bindings::load(&path) {
            Ok(_) => Ok(true),
            Err(e) => names_file(&e.to_string(), &["bindings.json"]),
        }
    });
}

#[test]
fn bound_keys_and_recipes_are_read_or_refused_never_a_panic() {
    let keys = br#"{"right": 3, "jump": 6, "left": 0}"#;
    fuzz("keys", 6, 16 * MIB, |m, dir| {
        std::fs::write(dir.join("keys.json"), m.json(keys)).unwrap();
        match genie::session::keys::read_bound_keys(dir, 8) {
            Ok(_) => Ok(true),
            Err(e) => names_file(&e, &["keys.json"]),
        }
    });
    let recipe =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/genie.toml")).unwrap();
    fuzz("recipe", 7, 16 * MIB, |m, dir| {
        let path = dir.join("r.toml");
        std::fs::write(&path, m.bytes(&recipe)).unwrap();
        match genie::train::recipe::Recipe::load(&path) {
            Ok(_) => Ok(true),
            Err(e) => names_file(&e.to_string(), &["r.toml"]),
        }
    });
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_memory_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
