//! A site's CSV as real files come: quoted fields, a byte-order mark,
//! another delimiter; checked against a task's schema, with every refusal
//! naming the file, the line and the column.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use veil_learn::dataset::{CsvFormat, Dataset, Schema};

fn schema() -> Schema {
    Schema {
        features: vec!["age".into(), "dose mg".into()],
        classes: vec!["no".into(), "yes".into()],
    }
}

fn for_task(text: &str, format: CsvFormat, require_label: bool) -> Result<(Dataset, bool), String> {
    Dataset::parse_csv_for(
        text.as_bytes(),
        Path::new("site.csv"),
        format,
        &schema(),
        require_label,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn quotes_a_byte_order_mark_and_semicolons_are_read() {
    let text = "\u{feff}age;\"dose mg\";label\n41;\"2.5\";yes\n\n 63 ; 1e1 ;no\n";
    let (d, labelled) = for_task(text, CsvFormat { delimiter: b';' }, true).unwrap();
    assert!(labelled);
    assert_eq!(d.feature_names, ["age", "dose mg"]);
    assert_eq!(d.features, [41.0, 2.5, 63.0, 10.0]);
    assert_eq!(d.labels, [1, 0]);
    assert_eq!(d.classes, 2);
    // The classic reader takes the same quoting and mark.
    let d = Dataset::parse_csv("\u{feff}\"a\",b,label\n\"1\",2,0\n", Path::new("x.csv")).unwrap();
    assert_eq!(d.feature_names, ["a", "b"]);
}

#[test]
fn a_csv_that_is_not_the_task_s_is_refused_naming_the_column() {
    let comma = CsvFormat::default();
    let cases = [
        ("age,label\n1,no\n", "line 1, column \"dose mg\": missing"),
        (
            "age,dose mg,weight,label\n1,2,3,no\n",
            "line 1, column \"weight\": not a feature of the task",
        ),
        (
            "dose mg,age,label\n1,2,no\n",
            "line 1, column \"dose mg\": out of order",
        ),
        ("age,dose mg\n1,2\n", "line 1, column \"label\": missing"),
        (
            "age,label,dose mg\n1,no,2\n",
            "column \"label\": `label` must be the last column",
        ),
        (
            "age,dose mg,label\n1,2,no\n3,4,maybe\n",
            "line 3, column \"label\": \"maybe\" is not one of the task's classes",
        ),
        (
            "age,dose mg,label\n1,x,no\n",
            "line 2, column \"dose mg\": \"x\" is not a number",
        ),
        (
            "age,dose mg,label\n1,2\n",
            "line 2: 2 values, the header has 3",
        ),
        ("age,dose mg,label\n\"1,2,no\n", "site.csv: line"),
        ("age,dose mg,label\n", "no data rows"),
    ];
    for (text, needle) in cases {
        let err = for_task(text, comma, true).unwrap_err();
        assert!(err.starts_with("site.csv: line"), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Not UTF-8: refused with its line.
    let err = Dataset::parse_csv_for(
        b"age,dose mg,label\n1,\xff,no\n",
        Path::new("site.csv"),
        comma,
        &schema(),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
}

#[test]
fn rows_without_a_label_are_read_when_none_is_required() {
    let (d, labelled) = for_task("age,dose mg\n1,2\n3,4\n", CsvFormat::default(), false).unwrap();
    assert!(!labelled);
    assert_eq!(d.rows(), 2);
    assert_eq!(d.labels, [0, 0]);
}
