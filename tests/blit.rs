//! The blit, rendered offscreen on whatever adapter wgpu finds (Mesa's software Vulkan in CI) and
//! read back, shows exactly the input frame: integer-scaled, centred, letterboxed in black.

use genie::app::offscreen::Headless;

fn test_frame(seed: u32) -> Vec<u8> {
    // Distinct colours per pixel so any off-by-one in sampling shows.
    (0..64 * 64)
        .flat_map(|i| {
            let (x, y) = (i % 64, i / 64);
            [(x * 4) as u8, (y * 4) as u8, ((x ^ y) * 3 + seed) as u8]
        })
        .collect()
}

fn pixel(img: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * width + x) * 4) as usize;
    [img[i], img[i + 1], img[i + 2]]
}

#[test]
fn blit_matches_the_input_frame_scaled_and_letterboxed() {
    let gpu =
        Headless::new().expect("a wgpu adapter (scripts/setup.sh installs Mesa's software Vulkan)");
    let frame = test_frame(0);
    let (w, h) = (300u32, 200u32); // 3× scale fits (192 px), centred: x0 = 54, y0 = 4
    let img = gpu.render(&[&frame], 64, 64, w, h).unwrap();
    let (scale, x0, y0) = (3, (w - 192) / 2, (h - 192) / 2);
    let mut worst = 0u8;
    for y in 0..h {
        for x in 0..w {
            let got = pixel(&img, w, x, y);
            let inside = (x0..x0 + 192).contains(&x) && (y0..y0 + 192).contains(&y);
            let want = if inside {
                let (fx, fy) = ((x - x0) / scale, (y - y0) / scale);
                let i = ((fy * 64 + fx) * 3) as usize;
                [frame[i], frame[i + 1], frame[i + 2]]
            } else {
                [0, 0, 0]
            };
            for c in 0..3 {
                worst = worst.max(got[c].abs_diff(want[c]));
            }
        }
    }
    assert!(
        worst <= 1,
        "largest channel difference {worst} on {}",
        gpu.adapter_name
    );
}

#[test]
fn two_frames_side_by_side() {
    let gpu = Headless::new().unwrap();
    let (a, b) = (test_frame(0), test_frame(100));
    let (w, h) = (256u32, 128u32); // each column 128×128 → 2× scale, no letterbox
    let img = gpu.render(&[&a, &b], 64, 64, w, h).unwrap();
    for (x, frame) in [(10u32, &a), (128 + 10, &b)] {
        let fx = (x % 128) / 2;
        let i = ((7 * 64 + fx) * 3) as usize;
        assert_eq!(
            pixel(&img, w, x, 14),
            [frame[i], frame[i + 1], frame[i + 2]]
        );
    }
}
