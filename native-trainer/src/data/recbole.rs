//! RecBole atomic files: `NAME.inter` (`user_id:token item_id:token [rating:float] [timestamp:float]`)
//! and optionally `NAME.item` (`item_id:token` plus title, year and genre fields), tab-separated.

use super::builder::{on_row, parse_rating, parse_timestamp, Builder};
use super::table::{Dialect, Table};
use super::text::split_title_year;
use super::{name_of, BadRows, DataError, Dataset, Format, Item};
use std::path::{Path, PathBuf};

/// The single `*.inter` file in `dir`, if any; several are ambiguous and refused.
pub fn find_inter(dir: &Path) -> Result<Option<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "inter") && p.is_file())
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(DataError::Layout(format!(
            "{}: several RecBole .inter files ({}); point --data at a folder with one",
            dir.display(),
            found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub fn load(dir: &Path, bad: &mut BadRows) -> Result<Dataset, DataError> {
    let inter =
        find_inter(dir)?.ok_or_else(|| DataError::Layout(format!("{}: no RecBole .inter file", dir.display())))?;
    let mut b = Builder::new();
    let items = inter.with_extension("item");
    if items.is_file() {
        read_items(&items, &mut b, bad)?;
        b.catalogue_from(&items);
    }
    let mut t = Table::open(&inter, Dialect::tsv().typed_header())?;
    let cols = (t.require(&["user_id"])?, t.require(&["item_id"])?);
    let rating_col = t.find(&["rating"]);
    let ts_col = t.find(&["timestamp"]);
    let width = 1 + [Some(cols.0), Some(cols.1), rating_col, ts_col].into_iter().flatten().max().unwrap_or(0);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(width)?;
            let rating = rating_col.map(|c| parse_rating(&row, c)).transpose()?;
            let ts = ts_col.map(|c| parse_timestamp(&row, c)).transpose()?;
            b.add_interaction(&row, cols, rating, ts)
        })?;
    }
    t.finish()?;
    b.finish(name_of(dir), Format::Recbole, &inter)
}

fn read_items(path: &Path, b: &mut Builder, bad: &mut BadRows) -> Result<(), DataError> {
    let mut t = Table::open(path, Dialect::tsv().typed_header())?;
    let id_col = t.require(&["item_id"])?;
    let title_col = t.find(&["movie_title", "title", "name"]);
    let year_col = t.find(&["release_year", "year"]);
    let genre_col = t.find(&["class", "genre", "genres", "categories"]);
    let width = 1 + [Some(id_col), title_col, year_col, genre_col].into_iter().flatten().max().unwrap_or(0);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(width)?;
            let id = row.id(id_col)?.into_owned();
            let (title, title_year) = match title_col {
                Some(c) => split_title_year(&row.text(c)?),
                None => (id.clone(), None),
            };
            // The year is display metadata: an unreadable one (ml-100k has "unkonwn") is unknown.
            let year = match year_col {
                Some(c) => match row.text(c)?.parse::<i32>() {
                    Ok(y) => Some(y),
                    Err(_) => {
                        tracing::warn!(
                            "{}:{}: year {:?} is not a number; treated as unknown",
                            path.display(),
                            row.line(),
                            row.text(c)?
                        );
                        title_year
                    }
                },
                None => title_year,
            };
            let genres = match genre_col {
                Some(c) => row.text(c)?.split_whitespace().map(String::from).collect(),
                None => Vec::new(),
            };
            b.add_item(&row, id_col, Item { id, title, year, genres, ..Item::default() })
        })?;
    }
    t.finish()?;
    Ok(())
}
