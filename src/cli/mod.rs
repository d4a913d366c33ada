//! The subcommands' arguments and what they run; the library does the work.

pub mod bench;
pub mod data;
pub mod eval;
pub mod play;
pub mod recipe;
pub mod replay;
pub mod soak;
pub mod train;
pub mod world;

/// Prints a command's result on stdout. A reader that stops reading early (`genie eval | head`)
/// ends the printing, not the program with a panic.
pub fn print(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
