//! Progress bars that still say how things ended when the output is not a terminal.

use indicatif::ProgressBar;

/// Ends the bar with `message`, which is printed as a line of its own when the bar
/// is hidden because the output is not a terminal (a script, CI, a pipe).
pub fn finish(bar: &ProgressBar, message: String) {
    if bar.is_hidden() {
        println!("{message}");
    }
    bar.finish_with_message(message);
}
