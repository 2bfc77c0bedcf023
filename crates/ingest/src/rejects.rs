use serde_json::json;

/// An input that could not be stored, and why. Kept in the store's `_rejected/` area.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// The input it came from.
    pub source: String,
    /// 1-based line number in the (decompressed) input.
    pub line: u64,
    /// Index in the `EventList` or JSON array, when it was one item of one.
    pub item: Option<usize>,
    pub error: String,
    /// The rejected text (invalid UTF-8 replaced).
    pub raw: String,
    /// Whether `raw` had bytes that are not UTF-8.
    pub lossy: bool,
}

impl Reject {
    /// `file:line[item]: error`
    pub fn location(&self) -> String {
        match self.item {
            Some(i) => format!("{}:{} item {}", self.source, self.line, i),
            None => format!("{}:{}", self.source, self.line),
        }
    }

    pub(crate) fn to_json_line(&self, out: &mut Vec<u8>) {
        let v = json!({
            "source": self.source,
            "line": self.line,
            "item": self.item,
            "error": self.error,
            "raw": self.raw,
            "lossy_utf8": self.lossy,
        });
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
        out.push(b'\n');
    }
}
