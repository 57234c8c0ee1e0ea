//! The console of `shop up`: every line starts with the padded, coloured name of
//! the process it comes from (`inventory         | …`), so interleaved output from
//! several services stays readable.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

/// Colours for service names, handed out in the order the services are listed.
const COLOURS: &[&str] = &[
    "\x1b[36m", // cyan
    "\x1b[35m", // magenta
    "\x1b[32m", // green
    "\x1b[33m", // yellow
    "\x1b[34m", // blue
    "\x1b[91m", // bright red
];
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// How many of a service's last lines are kept for error reports.
pub const TAIL_LINES: usize = 20;

/// The label in front of one source's lines: its name padded to `width`, then `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    rendered: String,
}

impl Prefix {
    /// A prefix for `name`, coloured with the `index`-th colour when `colour` is on.
    pub fn new(name: &str, width: usize, index: usize, colour: bool) -> Self {
        let padded = format!("{name:<width$} |");
        let rendered = if colour {
            format!("{}{padded}{RESET}", COLOURS[index % COLOURS.len()])
        } else {
            padded
        };
        Self { rendered }
    }

    /// The prefix for `shop`'s own messages: bold rather than coloured.
    pub fn own(width: usize, colour: bool) -> Self {
        let padded = format!("{:<width$} |", "shop");
        let rendered = if colour {
            format!("{BOLD}{padded}{RESET}")
        } else {
            padded
        };
        Self { rendered }
    }

    /// `line` with this prefix, its line ending removed.
    pub fn apply(&self, line: &str) -> String {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            self.rendered.clone()
        } else {
            format!("{} {line}", self.rendered)
        }
    }
}

/// Whether to colour the output: standard output is a terminal and `NO_COLOR` is
/// not set (<https://no-color.org>).
pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Writes one line to standard output. A closed output (`shop up | head`) is no
/// reason to stop the stack, so write errors are ignored.
pub fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// `shop`'s own voice on the console, aligned with the services' lines.
#[derive(Debug, Clone)]
pub struct Console {
    prefix: Prefix,
    width: usize,
    colour: bool,
}

impl Console {
    /// A console whose prefixes are padded to `width` characters.
    pub fn new(width: usize) -> Self {
        let colour = colour_enabled();
        Self {
            prefix: Prefix::own(width, colour),
            width,
            colour,
        }
    }

    /// Prints a message from `shop` itself.
    pub fn say(&self, message: impl AsRef<str>) {
        for line in message.as_ref().lines() {
            emit(&self.prefix.apply(line));
        }
    }

    /// The prefix for the `index`-th service.
    pub fn prefix_for(&self, name: &str, index: usize) -> Prefix {
        Prefix::new(name, self.width, index, self.colour)
    }
}

/// The last lines one service printed, shared between the task that reads its
/// output and the supervisor that reports its failure.
#[derive(Debug, Clone, Default)]
pub struct LogTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl LogTail {
    /// Remembers a line, forgetting the oldest beyond [`TAIL_LINES`].
    pub fn push(&self, line: &str) {
        // A panic while holding the lock cannot leave the queue inconsistent.
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line.trim_end_matches(['\n', '\r']).to_owned());
    }

    /// The remembered lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_pads_the_name_so_the_bars_line_up() {
        let short = Prefix::new("catalog", 17, 0, false);
        let long = Prefix::new("projection-worker", 17, 1, false);
        assert_eq!(short.apply("ready\n"), "catalog           | ready");
        assert_eq!(long.apply("ready\r\n"), "projection-worker | ready");
    }

    #[test]
    fn a_coloured_prefix_resets_the_colour_before_the_line() {
        let prefix = Prefix::new("gateway", 7, 2, true);
        assert_eq!(prefix.apply("up"), "\x1b[32mgateway |\x1b[0m up");
    }

    #[test]
    fn colours_repeat_when_there_are_more_services_than_colours() {
        let first = Prefix::new("a", 1, 0, true);
        let again = Prefix::new("a", 1, COLOURS.len(), true);
        assert_eq!(first, again);
    }

    #[test]
    fn an_empty_line_keeps_its_prefix_without_trailing_space() {
        assert_eq!(Prefix::own(4, false).apply(""), "shop |");
    }

    #[test]
    fn the_tail_keeps_only_the_last_lines() {
        let tail = LogTail::default();
        for n in 0..TAIL_LINES + 5 {
            tail.push(&format!("line {n}\n"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 5");
        assert_eq!(lines[TAIL_LINES - 1], format!("line {}", TAIL_LINES + 4));
    }
}
