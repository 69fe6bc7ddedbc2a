//! Compressed sparse rows: the interaction matrix in both orientations.

/// A sparse `rows x cols` matrix; each row's column indices are sorted.
#[derive(Clone, Debug, Default)]
pub struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
    pub cols: usize,
}

impl Csr {
    /// Builds from `(row, col, value)` triples; `(row, col)` pairs must be unique.
    pub fn from_triples(rows: usize, cols: usize, triples: impl IntoIterator<Item = (u32, u32, f32)>) -> Self {
        let mut triples: Vec<(u32, u32, f32)> = triples.into_iter().collect();
        triples.sort_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        for &(r, _, _) in &triples {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Self {
            indptr,
            indices: triples.iter().map(|t| t.1).collect(),
            values: triples.iter().map(|t| t.2).collect(),
            cols,
        }
    }

    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// Whether row `r` holds column `c` (binary search over the sorted row).
    pub fn contains(&self, r: usize, c: u32) -> bool {
        self.row(r).0.binary_search(&c).is_ok()
    }

    pub fn transpose(&self) -> Self {
        let triples = (0..self.rows()).flat_map(|r| {
            let (cols, vals) = self.row(r);
            cols.iter().zip(vals).map(move |(&c, &v)| (c, r as u32, v))
        });
        Self::from_triples(self.cols, self.rows(), triples.collect::<Vec<_>>())
    }

    /// The same pattern with every value mapped by `f`.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Self {
        Self { values: self.values.iter().map(|&v| f(v)).collect(), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_sorted_rows_and_transposes() {
        let m = Csr::from_triples(3, 4, [(2, 1, 1.0), (0, 3, 2.0), (0, 0, 3.0)]);
        assert_eq!(m.row(0), (&[0u32, 3][..], &[3.0f32, 2.0][..]));
        assert_eq!(m.row_len(1), 0);
        assert!(m.contains(2, 1) && !m.contains(2, 0));
        let t = m.transpose();
        assert_eq!(t.rows(), 4);
        assert_eq!(t.row(3), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(t.row(1), (&[2u32][..], &[1.0f32][..]));
    }
}
