//! Latent factors of users and items (ALS, BPR, or fitted elsewhere), scored by dot product.

use super::{Fitted, Scorer};
use crate::store::{read_tensors, write_tensors};
use anyhow::Result;
use nook_core::quant::encode_f32;
use nook_core::{score_items, score_items_many};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Factors {
    pub name: String,
    pub dim: usize,
    /// Row-major `users x dim`.
    pub users: Vec<f32>,
    /// Row-major `items x dim`.
    pub items: Vec<f32>,
    pub item_bias: Option<Vec<f32>>,
    /// For factors fitted elsewhere (Spark): the items that had a row. Those keep their factors
    /// even without training interactions here; `None` = only this split's training items are
    /// fitted.
    pub item_known: Option<Vec<bool>>,
}

impl Factors {
    pub fn user(&self, user: u32) -> &[f32] {
        &self.users[user as usize * self.dim..(user as usize + 1) * self.dim]
    }
    pub fn n_items(&self) -> usize {
        self.items.len() / self.dim
    }
    pub fn n_users(&self) -> usize {
        self.users.len() / self.dim
    }

    /// Reads `DIR/<name>.safetensors` for `n_users` x `n_items` (with an item bias if `bias`).
    pub fn load(dir: &Path, name: &str, n_users: usize, n_items: usize, bias: bool) -> Result<Self> {
        let path = dir.join(format!("{name}.safetensors"));
        read_tensors(&path, |t| {
            let dim = t.width("item_factors")?;
            Ok(Factors {
                name: name.to_string(),
                dim,
                users: t.f32("user_factors", &[n_users, dim])?,
                items: t.f32("item_factors", &[n_items, dim])?,
                item_bias: if bias { Some(t.f32("item_bias", &[n_items])?) } else { None },
                item_known: None,
            })
        })
    }
}

impl Scorer for Factors {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        score_items(&self.items, self.dim, self.user(user), self.item_bias.as_deref(), out);
    }
    fn score_many(&self, users: &[u32], out: &mut [f32]) {
        let queries: Vec<&[f32]> = users.iter().map(|&u| self.user(u)).collect();
        score_items_many(&self.items, self.dim, &queries, out);
        if let Some(bias) = &self.item_bias {
            // Added after the products, as `score_items` adds it.
            out.chunks_exact_mut(bias.len().max(1)).for_each(|o| o.iter_mut().zip(bias).for_each(|(o, b)| *o += b));
        }
    }
}

impl Fitted for Factors {
    fn scorer<'a>(&'a self, _history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(self)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let mut t = vec![
            encode_f32("user_factors", &[self.n_users(), self.dim], &self.users),
            encode_f32("item_factors", &[self.n_items(), self.dim], &self.items),
        ];
        if let Some(b) = &self.item_bias {
            t.push(encode_f32("item_bias", &[b.len()], b));
        }
        write_tensors(&dir.join(format!("{}.safetensors", self.name)), &t)
    }
}
