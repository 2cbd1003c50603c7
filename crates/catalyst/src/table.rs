//! The one text style of every `list`: a header row in capitals, then one row per item, columns
//! separated by two spaces and padded to the widest cell (kubectl's and cargo's style); nothing
//! is printed but the rows, so `| awk '{print $1}'` and `| tail -n +2` work. Machine output is
//! `-o json|yaml`, never this.

use serde_json::Value;

/// A column: its header and where its cell is in an item (a JSON pointer).
pub type Column<'a> = (&'a str, &'a str);

/// Renders `headers` and `rows` as aligned text, one line each, trailing spaces trimmed.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The rows of `items` for `columns`, each cell read with [`cell`].
pub fn rows(items: &[Value], columns: &[Column<'_>]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|(_, ptr)| cell(item.pointer(ptr).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect()
}

/// A value as one table cell: a string as is (its first line, newlines folded), numbers and
/// booleans as written, a list joined with `,`, an object by its `kind` or `name`, nothing as `-`.
pub fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        // An object (a policy rule, say) by its `kind` or `name` when it has one.
        Value::Object(o) => match o.get("kind").or_else(|| o.get("name")) {
            Some(Value::String(k)) => k.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligned_with_a_header_and_no_trailing_spaces() {
        let items = [
            json!({"metadata": {"name": "acme"}, "spec": {"plan": "pro", "tags": ["a", "b"]}}),
            json!({"metadata": {"name": "globex-industries"}, "spec": {}}),
        ];
        let text = render(
            &["NAME", "PLAN", "TAGS"],
            &rows(
                &items,
                &[
                    ("NAME", "/metadata/name"),
                    ("PLAN", "/spec/plan"),
                    ("TAGS", "/spec/tags"),
                ],
            ),
        );
        assert_eq!(
            text,
            "NAME               PLAN  TAGS\n\
             acme               pro   a,b\n\
             globex-industries  -     -\n"
        );
    }

    #[test]
    fn cells_are_one_line() {
        assert_eq!(cell(&json!("two\nlines  here")), "two lines here");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(
            cell(&json!([{"kind": "soak", "hours": 2}, {"x": 1}])),
            "soak,{\"x\":1}"
        );
        assert_eq!(render(&["A"], &[]), "A\n");
    }
}
