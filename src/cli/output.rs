//! What the commands print: `key: value` fields, aligned tables, the API's JSON, progress on
//! stderr, and the escaping that keeps stored text (a provider's words, a name) from driving
//! the terminal. Every write to stdout goes through here, so a closed stdout (`dravo openapi
//! | head -1`) is noticed in one place and ends the program quietly (see `stdout_closed`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use poem_openapi::types::ToJSON;

use crate::domain::{Timestamp, is_hidden};
use crate::error::{Error, Result};

/// Set when a write to stdout found its reader gone.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout's reader went away (a broken pipe) while a command printed: the command
/// stopped there, and that is a normal end, not an error (as `head` closing the pipe is).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

/// A failed write to stdout, as the error that stops the command; a broken pipe is
/// remembered for `stdout_closed`.
fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::SeqCst);
    }
    Error::Internal(format!("cannot write to stdout: {e}"))
}

/// Writes `bytes` to stdout as they are.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Writes `text` and a newline to stdout.
pub fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// `-` for nothing.
pub fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// A time in RFC 3339, or `-` for none.
pub fn time_or_dash(time: Option<Timestamp>) -> String {
    time.map_or_else(|| "-".into(), |t| t.rfc3339())
}

/// Prints the API's JSON for `value` (see `json_text`).
pub fn print_json<T: ToJSON>(value: &T) -> Result<()> {
    print_line(&json_text(value))
}

/// The API's JSON for `value`, on one line. serde_json escapes C0 controls but writes DEL and
/// the C1 controls (U+007F to U+009F) raw, and a terminal obeys some of them (U+009B starts a
/// control sequence), so they are written as `\u00XX` escapes: the same JSON, and they can
/// only occur inside strings. Bidirectional and invisible characters stay as they are.
fn json_text<T: ToJSON>(value: &T) -> String {
    let json = value
        .to_json()
        .unwrap_or(serde_json::Value::Null)
        .to_string();
    if !json.contains(|c: char| ('\u{7f}'..='\u{9f}').contains(&c)) {
        return json;
    }
    let mut text = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            let _ = write!(text, "\\u{:04x}", u32::from(c));
        } else {
            text.push(c);
        }
    }
    text
}

/// Text as human-readable output shows it: control characters, bidirectional formatting and
/// invisible characters, and whitespace other than a plain space become visible escapes
/// (`\u{1b}`), so a stored value cannot recolour the terminal, reorder a line, or break a
/// table row in two. Values stored before provider text was cleaned included.
pub fn shown(text: &str) -> Cow<'_, str> {
    let escape = |c: char| is_hidden(c) || (c.is_whitespace() && c != ' ');
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints `key: value` lines (see `fields_text`).
pub fn print_fields(fields: &[(&str, String)]) -> Result<()> {
    print_line(&fields_text(fields))
}

/// `key: value` lines with the values aligned, each value [`shown`] safely.
fn fields_text(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let lines: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{:<width$} {}", format!("{key}:"), shown(value)))
        .collect();
    lines.join("\n")
}

/// Prints a list as the API's JSON array (`--json`) or as a table with one row per item;
/// `empty` alone when there is none.
pub fn print_list<T, V>(
    items: Vec<T>,
    json: bool,
    empty: &str,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()>
where
    V: From<T> + ToJSON,
{
    if json {
        let views: Vec<V> = items.into_iter().map(V::from).collect();
        return print_json(&views);
    }
    if items.is_empty() {
        return print_line(empty);
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    print_table(header, &rows)
}

/// Prints rows as an aligned table (see `table_text`).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    print_line(&table_text(header, rows))
}

/// Rows as an aligned table under `header`: each cell [`shown`] safely, columns as wide as
/// their widest cell in characters, two spaces apart, no trailing spaces.
fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| shown(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut text = line(header.to_vec());
    for row in &rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(|cell| cell.as_ref()).collect()));
    }
    text
}

/// A spinner on stderr while one long step runs, when stderr is a terminal; nothing else.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn start(message: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Spinner(Some(bar))
    }

    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Progress of a long count on stderr: a bar on a terminal; else the opening line, then a
/// line of `line(done, total)` at most once a second, and the last count at the end unless
/// it was the last line printed.
pub struct Progress {
    /// The plain line for a count.
    line: fn(u64, u64) -> String,
    bar: Option<indicatif::ProgressBar>,
    /// When a plain line was last printed, and what it said.
    last_line: Option<(std::time::Instant, (u64, u64))>,
    last: Option<(u64, u64)>,
}

impl Progress {
    pub fn new(line: fn(u64, u64) -> String) -> Progress {
        Progress {
            line,
            bar: None,
            last_line: None,
            last: None,
        }
    }

    /// Starts the count: `headline` on its own line, then a bar labelled `doing` counting
    /// `total` `units` (on a terminal).
    pub fn start(&mut self, headline: String, total: u64, doing: &str, units: &str) {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {units} ({{eta}} left)"
                ))
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(doing.to_owned());
            bar.println(headline);
            self.bar = Some(bar);
        } else {
            eprintln!("{headline}");
        }
    }

    /// `done` of `total` so far.
    pub fn advance(&mut self, done: u64, total: u64) {
        self.last = Some((done, total));
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        } else if self
            .last_line
            .is_none_or(|(t, _)| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            self.last_line = Some((std::time::Instant::now(), (done, total)));
            eprintln!("{}", (self.line)(done, total));
        }
    }

    pub fn finish(self) {
        match (self.bar, self.last) {
            (Some(bar), _) => bar.finish_and_clear(),
            // The last count, unless it was the last line printed.
            (None, Some(last)) if self.last_line.is_none_or(|(_, shown)| shown != last) => {
                eprintln!("{}", (self.line)(last.0, last.1));
            }
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_shown_as_it_is_without_copying() {
        for text in [
            "",
            "Ana Baker",
            "Bäckerei ☕ 🦀",
            "a  b",
            "日本語",
            "x=1;y='2'",
        ] {
            assert!(
                matches!(shown(text), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn c0_controls_and_whitespace_other_than_a_space_are_escaped() {
        assert_eq!(shown("a\tb"), r"a\u{9}b");
        assert_eq!(shown("line\nforged"), r"line\u{a}forged");
        assert_eq!(shown("cr\r\n"), r"cr\u{d}\u{a}");
        assert_eq!(shown("bell\u{7}"), r"bell\u{7}");
        assert_eq!(shown("\0"), r"\u{0}");
        assert_eq!(shown("nbsp\u{a0}x"), r"nbsp\u{a0}x");
        assert_eq!(shown("ideographic\u{3000}x"), r"ideographic\u{3000}x");
    }

    #[test]
    fn del_and_c1_controls_are_escaped() {
        assert_eq!(shown("del\u{7f}"), r"del\u{7f}");
        // U+009B is a one-character CSI: `\u{9b}2J` would clear the screen.
        assert_eq!(shown("\u{9b}2J"), r"\u{9b}2J");
        assert_eq!(shown("nel\u{85}x"), r"nel\u{85}x");
        assert_eq!(shown("\u{80}\u{9f}"), r"\u{80}\u{9f}");
    }

    #[test]
    fn line_and_paragraph_separators_are_escaped() {
        assert_eq!(shown("a\u{2028}b\u{2029}c"), r"a\u{2028}b\u{2029}c");
    }

    #[test]
    fn bidi_controls_and_invisible_characters_are_escaped() {
        // RLO reverses what follows: `resu` would read `user`.
        assert_eq!(shown("\u{202e}resu"), r"\u{202e}resu");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
        ] {
            assert_eq!(
                shown(&format!("a{c}b")),
                format!("a{}b", c.escape_unicode())
            );
        }
        for c in ['\u{200b}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{ad}'] {
            assert_eq!(
                shown(&format!("a{c}b")),
                format!("a{}b", c.escape_unicode())
            );
        }
    }

    #[test]
    fn ansi_escape_sequences_are_escaped_and_cannot_recolour() {
        let shown = shown("\u{1b}[31mred\u{1b}[0m \u{1b}]8;;http://evil\u{7}link");
        assert_eq!(
            shown,
            r"\u{1b}[31mred\u{1b}[0m \u{1b}]8;;http://evil\u{7}link"
        );
        assert!(!shown.chars().any(|c| c.is_control()));
    }

    #[test]
    fn json_escapes_del_and_c1_controls_and_stays_the_same_json() {
        let value = serde_json::json!({"name": "a\u{7f}b\u{9b}2J\u{85}", "bidi": "\u{202e}x"});
        let text = json_text(&value);
        assert!(text.contains(r"a\u007fb\u009b2J\u0085"), "{text}");
        assert!(!text.chars().any(|c| c.is_control()), "{text}");
        // Bidirectional characters stay: they are not controls a terminal obeys.
        assert!(text.contains('\u{202e}'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        // Plain JSON is untouched.
        let plain = serde_json::json!({"a": [1, "b\nc"]});
        assert_eq!(json_text(&plain), r#"{"a":[1,"b\nc"]}"#);
    }

    #[test]
    fn fields_align_their_values_and_escape_them() {
        let text = fields_text(&[
            ("id", "acc_1".into()),
            ("display_name", "Ana\u{1b}[2J".into()),
            ("tasks", "-".into()),
        ]);
        assert_eq!(
            text,
            "id:           acc_1\ndisplay_name: Ana\\u{1b}[2J\ntasks:        -"
        );
        assert_eq!(fields_text(&[]), "");
    }

    #[test]
    fn tables_align_columns_by_characters_without_trailing_spaces() {
        let text = table_text(
            &["ID", "NAME", "STATUS"],
            &[
                vec!["acc_1".into(), "Bäckerei".into(), "active".into()],
                vec!["acc_22".into(), "X".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "ID      NAME      STATUS\n\
             acc_1   Bäckerei  active\n\
             acc_22  X"
        );
    }

    #[test]
    fn a_table_cell_with_a_newline_stays_on_its_row() {
        let text = table_text(
            &["ID", "NAME"],
            &[
                vec!["acc_1".into(), "evil\nacc_forged  x".into()],
                vec!["acc_2".into(), "ok".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            ["ID     NAME", r"acc_1  evil\u{a}acc_forged  x", "acc_2  ok"]
        );
    }

    #[test]
    fn widths_are_measured_after_escaping() {
        let text = table_text(
            &["A", "B"],
            &[
                vec!["\u{7}".into(), "b".into()],
                vec!["a".into(), "b".into()],
            ],
        );
        // `\u{7}` is five characters wide once shown.
        assert_eq!(text, "A      B\n\\u{7}  b\na      b");
    }

    #[test]
    fn a_table_with_no_rows_is_its_header() {
        assert_eq!(table_text(&["ID", "NAME"], &[]), "ID  NAME");
    }
}
