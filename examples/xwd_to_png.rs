//! Converts an X Window Dump (`xwd -root` of an Xvfb screen) to PNG, cropped to a region:
//! how `docs/player.png` was made (see `scripts/screenshot.sh`).
//!
//! `cargo run --example xwd_to_png -- IN.xwd OUT.png [WIDTH HEIGHT]`

#[path = "../tests/common/xwd.rs"]
mod xwd;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 2 || args.len() == 4,
        "usage: xwd_to_png IN.xwd OUT.png [WIDTH HEIGHT]"
    );
    let shot = xwd::parse(&std::fs::read(&args[0])?).map_err(anyhow::Error::msg)?;
    let (w, h) = match args.len() {
        4 => (
            args[2].parse::<u32>()?.min(shot.width),
            args[3].parse::<u32>()?.min(shot.height),
        ),
        _ => (shot.width, shot.height),
    };
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(shot.pixel(x, y)));
    img.save(&args[1])?;
    Ok(())
}
