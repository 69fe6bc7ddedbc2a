//! Loading interactions and item text from the supported layouts.
//!
//! | format      | files                                                                 |
//! |-------------|-----------------------------------------------------------------------|
//! | `movielens` | `ratings.csv`, `movies.csv` [+ `tags.csv`, `links.csv`, `items_text.csv`] |
//! | `ml100k`    | `u.data`, `u.item` [+ `u.genre`] (the original MovieLens 100k)        |
//! | `recbole`   | `NAME.inter` [+ `NAME.item`] (RecBole atomic files)                   |
//! | `generic`   | `--interactions FILE` (`user,item[,rating][,timestamp]`) + `--items FILE` (`item,text[,title]`) |

mod builder;
pub mod error;
mod generic;
mod movielens;
mod recbole;
pub mod table;
mod text;

pub use builder::Builder;
pub use error::{BadRowLimit, BadRows, DataError, SkippedRows};
pub use text::{field_values, split_title_year, TextField};

use std::path::{Path, PathBuf};

/// One catalogue item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    /// The id used in the source files.
    pub id: String,
    /// Display title, without the year.
    pub title: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
    /// Most frequent user tags, most frequent first.
    pub tags: Vec<String>,
    /// Plot overview or other free text.
    pub overview: Option<String>,
}

impl Item {
    /// The single text the encoder sees: title, year, genres, tags and overview when present.
    pub fn text(&self) -> String {
        text::compose(self, None)
    }

    /// [`Item::text`] with one field held out.
    pub fn text_without(&self, field: Option<TextField>) -> String {
        text::compose(self, field)
    }
}

/// One observed (user, item) event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    pub rating: Option<f32>,
    pub timestamp: Option<i64>,
}

/// A loaded data set: a catalogue, users and their interactions, all indexed densely.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub format: Format,
    pub items: Vec<Item>,
    /// Source ids of users; `Interaction::user` indexes this.
    pub users: Vec<String>,
    pub interactions: Vec<Interaction>,
    /// Rows read and skipped under `--skip-bad-rows`, by reason.
    pub skipped: SkippedRows,
}

impl Dataset {
    pub fn has_ratings(&self) -> bool {
        self.interactions.iter().any(|i| i.rating.is_some())
    }
    pub fn has_timestamps(&self) -> bool {
        self.interactions.iter().any(|i| i.timestamp.is_some())
    }
    /// The item fields the encoder sees (those some item has, less `omit`), named as a person
    /// would: what a typed query can match.
    pub fn text_fields(&self, omit: Option<TextField>) -> Vec<String> {
        let any = |f: fn(&Item) -> bool| self.items.iter().any(f);
        let fields: [(&str, bool); 5] = [
            ("title", any(|i| !i.title.is_empty())),
            ("year", any(|i| i.year.is_some())),
            ("genres", any(|i| !i.genres.is_empty()) && omit != Some(TextField::Genres)),
            ("tags", any(|i| !i.tags.is_empty()) && omit != Some(TextField::Tags)),
            ("plot overview", any(|i| i.overview.as_deref().is_some_and(|o| !o.is_empty()))),
        ];
        fields.iter().filter(|(_, present)| *present).map(|(name, _)| name.to_string()).collect()
    }
}

/// Input layouts; `Auto` picks one from the files present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Auto,
    Movielens,
    Ml100k,
    Recbole,
    Generic,
}

/// Where to read from and how strictly.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub data: Option<PathBuf>,
    pub format: Option<Format>,
    pub interactions: Option<PathBuf>,
    pub items: Option<PathBuf>,
    pub skip_bad_rows: bool,
    /// How many rows skipping may drop before the data set is refused.
    pub max_bad_rows: BadRowLimit,
}

/// Loads a data set, detecting the layout when asked to.
pub fn load(source: &Source) -> Result<Dataset, DataError> {
    let format = match source.format.unwrap_or(Format::Auto) {
        Format::Auto => detect(source)?,
        f => f,
    };
    let mut bad = BadRows::with_limit(source.skip_bad_rows, source.max_bad_rows);
    let dir = || -> Result<&Path, DataError> {
        source.data.as_deref().ok_or_else(|| DataError::Layout(format!("format {format:?} needs --data DIR")))
    };
    let mut dataset = match format {
        Format::Movielens => movielens::load_latest(dir()?, &mut bad)?,
        Format::Ml100k => movielens::load_100k(dir()?, &mut bad)?,
        Format::Recbole => recbole::load(dir()?, &mut bad)?,
        Format::Generic => {
            let inter = source.interactions.as_deref().ok_or_else(|| {
                DataError::Layout("the generic format needs --interactions FILE (and --items FILE)".into())
            })?;
            generic::load(inter, source.items.as_deref(), &mut bad)?
        }
        Format::Auto => unreachable!("auto was resolved above"),
    };
    bad.check_limit(&dataset.name)?;
    dataset.skipped = bad.report().clone();
    if bad.count() > 0 {
        tracing::warn!("{}: {bad}", dataset.name);
    }
    tracing::info!(
        "loaded {} ({format:?}): {} users, {} items, {} interactions",
        dataset.name,
        dataset.users.len(),
        dataset.items.len(),
        dataset.interactions.len()
    );
    Ok(dataset)
}

/// Picks the layout from the files present.
pub fn detect(source: &Source) -> Result<Format, DataError> {
    if source.interactions.is_some() {
        return Ok(Format::Generic);
    }
    let Some(dir) = source.data.as_deref() else {
        return Err(DataError::Layout("no data given: pass --data DIR or --interactions FILE --items FILE".into()));
    };
    if !dir.is_dir() {
        return Err(DataError::Layout(format!("{}: not a directory", dir.display())));
    }
    if dir.join("ratings.csv").is_file() && dir.join("movies.csv").is_file() {
        return Ok(Format::Movielens);
    }
    if dir.join("u.data").is_file() && dir.join("u.item").is_file() {
        return Ok(Format::Ml100k);
    }
    if recbole::find_inter(dir)?.is_some() {
        return Ok(Format::Recbole);
    }
    Err(DataError::Layout(format!(
        "{}: no known layout (looked for ratings.csv+movies.csv, u.data+u.item, or a RecBole *.inter file)",
        dir.display()
    )))
}

/// A short name for a data set: its directory's name.
fn name_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into())
}
