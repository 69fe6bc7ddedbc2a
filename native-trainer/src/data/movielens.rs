//! MovieLens layouts: "latest" (`ratings.csv`, `movies.csv`, ...) and the original 100k (`u.data`, `u.item`).

use super::builder::{on_row, parse_rating, parse_timestamp, Builder};
use super::table::{Dialect, Encoding, Table};
use super::text::split_title_year;
use super::{name_of, BadRows, DataError, Dataset, Format, Item};
use std::collections::HashMap;
use std::path::Path;

/// How many user tags are kept per item, most frequent first.
const TAGS_PER_ITEM: usize = 10;

/// MovieLens "latest" (and 20M/25M/32M, same layout).
pub fn load_latest(dir: &Path, bad: &mut BadRows) -> Result<Dataset, DataError> {
    let mut b = Builder::new();
    let movies = dir.join("movies.csv");
    read_movies(&movies, &mut b, bad)?;
    b.catalogue_from(&movies);

    let ratings = dir.join("ratings.csv");
    let mut t = Table::open(&ratings, Dialect::csv())?;
    let cols = (t.require(&["userId"])?, t.require(&["movieId"])?);
    let rating_col = t.require(&["rating"])?;
    let ts_col = t.find(&["timestamp"]);
    let width = 1 + [cols.0, cols.1, rating_col, ts_col.unwrap_or(0)].into_iter().max().unwrap_or(0);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(width)?;
            let rating = parse_rating(&row, rating_col)?;
            let ts = ts_col.map(|c| parse_timestamp(&row, c)).transpose()?;
            b.add_interaction(&row, cols, Some(rating), ts)
        })?;
    }
    t.finish()?;

    let items_text = dir.join("items_text.csv");
    let has_text_tags = if items_text.is_file() { read_items_text(&items_text, &mut b, bad)? } else { false };
    let tags = dir.join("tags.csv");
    if tags.is_file() && !has_text_tags {
        read_tags(&tags, &mut b, bad)?;
    }
    b.finish(name_of(dir), Format::Movielens, &ratings)
}

fn read_movies(path: &Path, b: &mut Builder, bad: &mut BadRows) -> Result<(), DataError> {
    let mut t = Table::open(path, Dialect::csv())?;
    let (id_col, title_col) = (t.require(&["movieId"])?, t.require(&["title"])?);
    let genres_col = t.find(&["genres"]);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(1 + id_col.max(title_col).max(genres_col.unwrap_or(0)))?;
            let (title, year) = split_title_year(&row.text(title_col)?);
            let genres = match genres_col {
                Some(c) => row
                    .text(c)?
                    .split('|')
                    .map(str::trim)
                    .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                    .map(String::from)
                    .collect(),
                None => Vec::new(),
            };
            let item = Item { id: row.id(id_col)?.into_owned(), title, year, genres, ..Item::default() };
            b.add_item(&row, id_col, item)
        })?;
    }
    t.finish()?;
    Ok(())
}

/// Reads `items_text.csv` (`movieId` plus text columns such as `overview` and `tags`).
/// Returns whether it carried tags, in which case `tags.csv` is not needed.
fn read_items_text(path: &Path, b: &mut Builder, bad: &mut BadRows) -> Result<bool, DataError> {
    let mut t = Table::open(path, Dialect::csv())?;
    let id_col = t.require(&["movieId", "item"])?;
    let overview_col = t.find(&["overview", "text", "description"]);
    let tags_col = t.find(&["tags"]);
    let verified_col = t.find(&["overview_verified"]);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(t_width(&[Some(id_col), overview_col, tags_col, verified_col]))?;
            let id = row.id(id_col)?;
            let index = b
                .item_index(&id)
                .ok_or_else(|| row.field_error(id_col, format!("item id {id:?} is not in movies.csv")))?;
            // Unverified overviews may belong to another film; leave them out.
            let verified = match verified_col {
                Some(c) => row.text(c)? != "0",
                None => true,
            };
            let overview = match overview_col {
                Some(c) if verified => Some(row.text(c)?.into_owned()).filter(|o| !o.is_empty()),
                _ => None,
            };
            let tags: Option<Vec<String>> = tags_col
                .map(|c| {
                    row.text(c)
                        .map(|s| s.split('|').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
                })
                .transpose()?;
            let item = b.item_mut(index);
            item.overview = overview;
            if let Some(tags) = tags {
                item.tags = tags;
            }
            Ok(())
        })?;
    }
    t.finish()?;
    Ok(tags_col.is_some())
}

fn t_width(cols: &[Option<usize>]) -> usize {
    cols.iter().flatten().max().map_or(0, |m| m + 1)
}

/// Aggregates `tags.csv` into each item's most frequent tags.
fn read_tags(path: &Path, b: &mut Builder, bad: &mut BadRows) -> Result<(), DataError> {
    let mut t = Table::open(path, Dialect::csv())?;
    let (id_col, tag_col) = (t.require(&["movieId"])?, t.require(&["tag"])?);
    // (item, lower-cased tag) -> (count, first seen order, original spelling)
    let mut counts: HashMap<(u32, String), (usize, usize, String)> = HashMap::new();
    let mut order = 0;
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(t_width(&[Some(id_col), Some(tag_col)]))?;
            let id = row.id(id_col)?;
            let index = b
                .item_index(&id)
                .ok_or_else(|| row.field_error(id_col, format!("item id {id:?} is not in movies.csv")))?;
            let tag = row.text(tag_col)?;
            if !tag.is_empty() {
                let entry = counts.entry((index, tag.to_lowercase())).or_insert((0, order, tag.into_owned()));
                entry.0 += 1;
                order += 1;
            }
            Ok(())
        })?;
    }
    let mut per_item: HashMap<u32, Vec<(usize, usize, String)>> = HashMap::new();
    for ((item, _), v) in counts {
        per_item.entry(item).or_default().push(v);
    }
    for (item, mut tags) in per_item {
        tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        b.item_mut(item).tags = tags.into_iter().take(TAGS_PER_ITEM).map(|t| t.2).collect();
    }
    Ok(())
}

/// Genre names of the original 100k `u.item` flags, used when `u.genre` is absent.
const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// The original MovieLens 100k files.
pub fn load_100k(dir: &Path, bad: &mut BadRows) -> Result<Dataset, DataError> {
    let mut b = Builder::new();
    let genres = read_100k_genres(dir)?;
    let items = dir.join("u.item");
    let item_cols = ["movie id", "movie title", "release date", "video release date", "IMDb URL"];
    let mut t = Table::open(&items, Dialect::csv().delimiter(b'|').headerless(&item_cols).encoding(Encoding::Latin1))?;
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(5 + genres.len())?;
            let (title, year) = split_title_year(&row.text(1)?);
            let year = year.or_else(|| row.text(2).ok()?.rsplit('-').next()?.parse().ok());
            let mut item_genres = Vec::new();
            for (g, name) in genres.iter().enumerate() {
                if row.text(5 + g)? == "1" && name != "unknown" {
                    item_genres.push(name.clone());
                }
            }
            b.add_item(
                &row,
                0,
                Item { id: row.id(0)?.into_owned(), title, year, genres: item_genres, ..Item::default() },
            )
        })?;
    }
    t.finish()?;
    b.catalogue_from(&items);

    let data = dir.join("u.data");
    let mut t = Table::open(&data, Dialect::tsv().headerless(&["user id", "item id", "rating", "timestamp"]))?;
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(4)?;
            let rating = parse_rating(&row, 2)?;
            let ts = parse_timestamp(&row, 3)?;
            b.add_interaction(&row, (0, 1), Some(rating), Some(ts))
        })?;
    }
    t.finish()?;
    b.finish(name_of(dir), Format::Ml100k, &data)
}

fn read_100k_genres(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("u.genre");
    if !path.is_file() {
        return Ok(ML100K_GENRES.iter().map(|s| s.to_string()).collect());
    }
    let mut t = Table::open(&path, Dialect::csv().delimiter(b'|').headerless(&["genre", "index"]))?;
    let mut genres = Vec::new();
    while let Some(row) = t.next_row()? {
        row.expect_fields(2)?;
        genres.push(row.text(0)?.into_owned());
    }
    t.finish()?;
    Ok(genres)
}
