//! Accumulates a catalogue and interactions, enforcing the rules every layout shares.

use super::table::Row;
use super::{BadRows, DataError, Dataset, Format, Interaction, Item};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Builds a [`Dataset`], refusing duplicate items, duplicate (user, item) pairs and interactions
/// with items missing from the catalogue.
pub struct Builder {
    items: Vec<Item>,
    item_index: HashMap<String, u32>,
    /// The file that defined the catalogue; `None` when items come only from interactions.
    catalogue: Option<PathBuf>,
    users: Vec<String>,
    user_index: HashMap<String, u32>,
    interactions: Vec<Interaction>,
    /// Line of the first occurrence of each (user, item) pair.
    seen: HashMap<(u32, u32), u64>,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            item_index: HashMap::new(),
            catalogue: None,
            users: Vec::new(),
            user_index: HashMap::new(),
            interactions: Vec::new(),
            seen: HashMap::new(),
        }
    }

    /// Declares that `file` lists the whole catalogue: interactions must refer to its items.
    pub fn catalogue_from(&mut self, file: &Path) {
        self.catalogue = Some(file.to_owned());
    }

    /// Adds a catalogue item read from `row`; a repeated id is an error.
    pub fn add_item(&mut self, row: &Row<'_>, id_col: usize, item: Item) -> Result<(), DataError> {
        if self.item_index.contains_key(&item.id) {
            return Err(row.field_error(id_col, format!("item id {:?} appears twice", item.id)));
        }
        self.item_index.insert(item.id.clone(), self.items.len() as u32);
        self.items.push(item);
        Ok(())
    }

    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    pub fn item_mut(&mut self, index: u32) -> &mut Item {
        &mut self.items[index as usize]
    }

    /// Adds one interaction from `row`, whose user and item ids sit in `cols.0` and `cols.1`.
    pub fn add_interaction(
        &mut self,
        row: &Row<'_>,
        cols: (usize, usize),
        rating: Option<f32>,
        timestamp: Option<i64>,
    ) -> Result<(), DataError> {
        let user_id = row.id(cols.0)?;
        let item_id = row.id(cols.1)?;
        let item = match (self.item_index.get(item_id.as_ref()), &self.catalogue) {
            (Some(&i), _) => i,
            (None, Some(catalogue)) => {
                return Err(row.field_error(cols.1, format!("item id {item_id:?} is not in {}", catalogue.display())));
            }
            (None, None) => {
                let index = self.items.len() as u32;
                let id = item_id.into_owned();
                self.items.push(Item { id: id.clone(), title: id.clone(), ..Item::default() });
                self.item_index.insert(id, index);
                index
            }
        };
        let user = match self.user_index.get(user_id.as_ref()) {
            Some(&u) => u,
            None => {
                let index = self.users.len() as u32;
                self.users.push(user_id.to_string());
                self.user_index.insert(user_id.into_owned(), index);
                index
            }
        };
        if let Some(first) = self.seen.get(&(user, item)) {
            return Err(row.error(format!(
                "duplicate interaction: user {:?} and item {:?} already appear on line {first}",
                self.users[user as usize], self.items[item as usize].id
            )));
        }
        self.seen.insert((user, item), row.line());
        self.interactions.push(Interaction { user, item, rating, timestamp });
        Ok(())
    }

    /// Finishes the data set; one with no interactions is refused.
    pub fn finish(self, name: String, format: Format, source: &Path) -> Result<Dataset, DataError> {
        if self.interactions.is_empty() {
            return Err(DataError::file(source, "no usable interactions"));
        }
        Ok(Dataset {
            name,
            format,
            items: self.items,
            users: self.users,
            interactions: self.interactions,
            skipped: Default::default(),
        })
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// A rating that must be a finite number.
pub fn parse_rating(row: &Row<'_>, col: usize) -> Result<f32, DataError> {
    let text = row.text(col)?;
    let value: f32 =
        text.parse().map_err(|_| row.field_error(col, format!("expected a rating number, found {text:?}")))?;
    if !value.is_finite() {
        return Err(row.field_error(col, format!("rating must be a finite number, found {text:?}")));
    }
    Ok(value)
}

/// A Unix timestamp in seconds (integer or decimal).
pub fn parse_timestamp(row: &Row<'_>, col: usize) -> Result<i64, DataError> {
    let text = row.text(col)?;
    if let Ok(v) = text.parse::<i64>() {
        return Ok(v);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() < 1e15 => Ok(v as i64),
        _ => Err(row.field_error(col, format!("expected a Unix timestamp in seconds, found {text:?}"))),
    }
}

/// Runs `f` on a row, routing row-level errors through `bad` (skip or stop).
pub fn on_row(bad: &mut BadRows, f: impl FnOnce() -> Result<(), DataError>) -> Result<(), DataError> {
    bad.row_read();
    match f() {
        Ok(()) => Ok(()),
        Err(e) => bad.handle(e),
    }
}
