//! The generic CSV pair: interactions `user,item[,rating][,timestamp]` and items `item,text[,title]`,
//! each with a header row naming its columns.

use super::builder::{on_row, parse_rating, parse_timestamp, Builder};
use super::table::{Dialect, Table};
use super::text::split_title_year;
use super::{name_of, BadRows, DataError, Dataset, Format, Item};
use std::path::Path;

pub fn load(interactions: &Path, items: Option<&Path>, bad: &mut BadRows) -> Result<Dataset, DataError> {
    let mut b = Builder::new();
    if let Some(items) = items {
        read_items(items, &mut b, bad)?;
        b.catalogue_from(items);
    }
    let mut t = Table::open(interactions, Dialect::csv())?;
    let cols = (t.require(&["user", "user_id", "userId"])?, t.require(&["item", "item_id", "itemId"])?);
    let rating_col = t.find(&["rating"]);
    let ts_col = t.find(&["timestamp", "time"]);
    let width = 1 + [Some(cols.0), Some(cols.1), rating_col, ts_col].into_iter().flatten().max().unwrap_or(0);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(width)?;
            let rating = match rating_col {
                Some(c) if !row.text(c)?.is_empty() => Some(parse_rating(&row, c)?),
                Some(c) => return Err(row.field_error(c, "empty rating")),
                None => None,
            };
            let ts = ts_col.map(|c| parse_timestamp(&row, c)).transpose()?;
            b.add_interaction(&row, cols, rating, ts)
        })?;
    }
    t.finish()?;
    let name = interactions.parent().map(name_of).unwrap_or_else(|| "data".into());
    b.finish(name, Format::Generic, interactions)
}

fn read_items(path: &Path, b: &mut Builder, bad: &mut BadRows) -> Result<(), DataError> {
    let mut t = Table::open(path, Dialect::csv())?;
    let id_col = t.require(&["item", "item_id", "itemId"])?;
    let text_col = t.require(&["text"])?;
    let title_col = t.find(&["title"]);
    let width = 1 + [Some(id_col), Some(text_col), title_col].into_iter().flatten().max().unwrap_or(0);
    while let Some(row) = t.next_row()? {
        on_row(bad, || {
            row.expect_fields(width)?;
            let id = row.id(id_col)?.into_owned();
            let (title, year) = match title_col {
                Some(c) if !row.text(c)?.is_empty() => split_title_year(&row.text(c)?),
                _ => (id.clone(), None),
            };
            let overview = Some(row.text(text_col)?.into_owned()).filter(|t| !t.is_empty());
            b.add_item(&row, id_col, Item { id, title, year, overview, ..Item::default() })
        })?;
    }
    t.finish()?;
    Ok(())
}
