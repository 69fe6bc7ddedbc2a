//! Display titles and the text the encoder sees.

use super::Item;

/// Splits a MovieLens-style title into name and year: `"Toy Story (1995)"` → (`"Toy Story"`, 1995).
/// Moves a trailing article to the front: `"Matrix, The"` → `"The Matrix"`.
pub fn split_title_year(raw: &str) -> (String, Option<i32>) {
    let raw = raw.trim();
    let (name, year) = match raw.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
        Some((name, year)) => match year.trim().parse::<i32>() {
            Ok(y) if (1800..=2200).contains(&y) => (name.trim_end(), Some(y)),
            _ => (raw, None),
        },
        None => (raw, None),
    };
    (move_article(name), year)
}

fn move_article(name: &str) -> String {
    for article in ["The", "A", "An", "Les", "La", "Le", "Il", "Das", "Der", "Die", "El"] {
        if let Some(stem) = name.strip_suffix(&format!(", {article}")) {
            return format!("{article} {stem}");
        }
    }
    name.to_string()
}

/// A part of an item's text that can be held out of what the encoder sees (so queries drawn from
/// it test understanding, not copying: see `eval::query`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TextField {
    /// User tags.
    Tags,
    /// Genre names.
    Genres,
}

/// An item's values of `field`.
pub fn field_values(item: &Item, field: TextField) -> &[String] {
    match field {
        TextField::Tags => &item.tags,
        TextField::Genres => &item.genres,
    }
}

pub(super) fn compose(item: &Item, omit: Option<TextField>) -> String {
    let mut text = item.title.clone();
    if let Some(y) = item.year {
        text.push_str(&format!(" ({y})"));
    }
    text.push('.');
    if !item.genres.is_empty() && omit != Some(TextField::Genres) {
        text.push_str(&format!(" Genres: {}.", item.genres.join(", ")));
    }
    if !item.tags.is_empty() && omit != Some(TextField::Tags) {
        text.push_str(&format!(" Tags: {}.", item.tags.join(", ")));
    }
    if let Some(overview) = item.overview.as_deref().filter(|o| !o.is_empty()) {
        text.push(' ');
        text.push_str(overview);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_years() {
        assert_eq!(split_title_year("Toy Story (1995)"), ("Toy Story".into(), Some(1995)));
        assert_eq!(split_title_year("Matrix, The (1999)"), ("The Matrix".into(), Some(1999)));
        assert_eq!(split_title_year("Babylon 5"), ("Babylon 5".into(), None));
        assert_eq!(split_title_year("Hello (World)"), ("Hello (World)".into(), None));
    }

    #[test]
    fn text_has_every_part() {
        let item = Item {
            id: "1".into(),
            title: "Toy Story".into(),
            year: Some(1995),
            genres: vec!["Animation".into(), "Comedy".into()],
            tags: vec!["pixar".into()],
            overview: Some("Toys come alive.".into()),
        };
        assert_eq!(item.text(), "Toy Story (1995). Genres: Animation, Comedy. Tags: pixar. Toys come alive.");
        assert_eq!(
            item.text_without(Some(TextField::Tags)),
            "Toy Story (1995). Genres: Animation, Comedy. Toys come alive."
        );
        assert_eq!(item.text_without(Some(TextField::Genres)), "Toy Story (1995). Tags: pixar. Toys come alive.");
    }
}
