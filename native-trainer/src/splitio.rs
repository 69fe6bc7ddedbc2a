//! Writes a split as CSV so outside tools train and evaluate on exactly the same data.
//!
//! ```text
//! DIR/train.csv  valid.csv  test.csv  cold.csv   user,item,rating,timestamp (source ids; positives only)
//! DIR/fit.csv                                    what the final models are fitted on: train + valid
//!                                                (train alone with --no-refit)
//! DIR/cold_items.csv                             item
//! DIR/split.json                                 the settings and sizes
//! ```

use crate::atomic;
use crate::data::{Dataset, Interaction};
use crate::split::Split;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

pub fn write(dir: &Path, data: &Dataset, split: &Split) -> Result<()> {
    let csv = |rows: &[Interaction]| -> String {
        let mut s = String::from("user,item,rating,timestamp\n");
        for i in rows {
            let rating = i.rating.map(|r| r.to_string()).unwrap_or_default();
            let ts = i.timestamp.map(|t| t.to_string()).unwrap_or_default();
            let _ = writeln!(
                s,
                "{},{},{rating},{ts}",
                quote(&data.users[i.user as usize]),
                quote(&data.items[i.item as usize].id)
            );
        }
        s
    };
    let summary = serde_json::json!({
        "dataset": data.name,
        "config": split.config,
        "users": split.n_users,
        "items": split.n_items,
        "train": split.train.len(),
        "valid": split.valid.len(),
        "test": split.test.len(),
        "cold": split.cold.len(),
        "cold_items": split.cold_items.len(),
        "dropped_unseen": split.dropped_unseen,
    });
    atomic::write_dir(dir, |tmp| {
        std::fs::write(tmp.join("train.csv"), csv(&split.train))?;
        std::fs::write(tmp.join("valid.csv"), csv(&split.valid))?;
        std::fs::write(tmp.join("fit.csv"), csv(&split.final_fit().train))?;
        std::fs::write(tmp.join("test.csv"), csv(&split.test))?;
        std::fs::write(tmp.join("cold.csv"), csv(&split.cold))?;
        let mut items = String::from("item\n");
        for &i in &split.cold_items {
            let _ = writeln!(items, "{}", quote(&data.items[i as usize].id));
        }
        std::fs::write(tmp.join("cold_items.csv"), items)?;
        std::fs::write(tmp.join("split.json"), serde_json::to_vec_pretty(&summary)?)?;
        Ok(())
    })
}

/// CSV-quotes a field when it needs it.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
