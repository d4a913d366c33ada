//! Reads the X Window Dump (`xwd -root`) of an Xvfb screen into RGB, for window screenshots.
//! Handles the TrueColor 24/32-bit dumps Xvfb writes.

pub struct Shot {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Shot {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

pub fn parse(bytes: &[u8]) -> Result<Shot, String> {
    let word = |i: usize| -> Result<u32, String> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "xwd: file too short".to_string())
    };
    let (header_size, version) = (word(0)? as usize, word(1)?);
    if version != 7 {
        return Err(format!("xwd: version {version}, expected 7"));
    }
    let (width, height) = (word(4)?, word(5)?);
    let byte_order = word(7)?; // 0 = LSB first
    let bits_per_pixel = word(11)?;
    let bytes_per_line = word(12)? as usize;
    let masks = [word(14)?, word(15)?, word(16)?];
    let ncolors = word(19)? as usize;
    if bits_per_pixel != 32 {
        return Err(format!("xwd: {bits_per_pixel} bits per pixel, expected 32"));
    }
    let data = header_size + ncolors * 12;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height as usize {
        for x in 0..width as usize {
            let i = data + y * bytes_per_line + x * 4;
            let b = bytes.get(i..i + 4).ok_or("xwd: pixel data cut short")?;
            let v = if byte_order == 0 {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            };
            for m in masks {
                rgb.push(((v & m) >> m.trailing_zeros()) as u8);
            }
        }
    }
    Ok(Shot { width, height, rgb })
}
