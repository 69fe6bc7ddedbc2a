//! Instruction prefixes some encoders were trained with, as the model's sentence-transformers
//! config names them (`config_sentence_transformers.json`, `prompts`): e5 reads `query: ` before
//! a search and `passage: ` before a document; all-MiniLM-L6-v2 has none. A query and the items
//! it is matched against must be embedded with the prefixes the model learned, so the trainer
//! prefixes item texts with the document prompt and a bundle carries the query prompt, which
//! the browser puts before what a person types.

use crate::error::{NookError, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Where a sentence-transformers model directory keeps its prompts.
pub const PROMPTS_FILE: &str = "config_sentence_transformers.json";

/// Names sentence-transformers' `encode_document` looks a document prompt up by, in its order.
const DOCUMENT_NAMES: [&str; 3] = ["document", "passage", "corpus"];

/// Longest prompt accepted: a prefix, not a text (it costs every item and query its tokens).
pub const MAX_PROMPT_BYTES: usize = 256;

/// The prefixes put before a typed query and before an item's text (empty: none). In a
/// manifest, a key other than these two is refused rather than ignored: a prompt a client would
/// not apply ranks every typed query wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub document: String,
}

#[derive(Deserialize)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    #[serde(default)]
    default_prompt_name: Option<String>,
}

impl Prompts {
    /// Reads a sentence-transformers `config_sentence_transformers.json` as its
    /// `encode_query` / `encode_document` would: the prompt named `query`, and the first of
    /// `document`, `passage`, `corpus`; a side without one takes `default_prompt_name`'s.
    pub fn from_sentence_transformers(bytes: &[u8]) -> Result<Self> {
        let c: SentenceTransformersConfig =
            serde_json::from_slice(bytes).map_err(|e| NookError::encoder(format!("{PROMPTS_FILE}: {e}")))?;
        let default = match &c.default_prompt_name {
            Some(name) => Some(c.prompts.get(name).ok_or_else(|| {
                NookError::encoder(format!("{PROMPTS_FILE}: default_prompt_name `{name}` is not among its prompts"))
            })?),
            None => None,
        };
        let query = c.prompts.get("query").or(default);
        let document = DOCUMENT_NAMES.iter().find_map(|n| c.prompts.get(*n)).or(default);
        let prompts =
            Prompts { query: query.cloned().unwrap_or_default(), document: document.cloned().unwrap_or_default() };
        prompts.check()?;
        Ok(prompts)
    }

    /// Refuses prompts longer than [`MAX_PROMPT_BYTES`].
    pub fn check(&self) -> Result<()> {
        for (side, p) in [("query", &self.query), ("document", &self.document)] {
            if p.len() > MAX_PROMPT_BYTES {
                return Err(NookError::encoder(format!(
                    "the {side} prompt is {} bytes; a prompt is a prefix of at most {MAX_PROMPT_BYTES}",
                    p.len()
                )));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.query.is_empty() && self.document.is_empty()
    }

    /// `text` as the model should read it when it is a query.
    pub fn query<'a>(&self, text: &'a str) -> Cow<'a, str> {
        prefixed(&self.query, text)
    }

    /// `text` as the model should read it when it is an item's text.
    pub fn document<'a>(&self, text: &'a str) -> Cow<'a, str> {
        prefixed(&self.document, text)
    }

    /// A `config_sentence_transformers.json` naming these prompts, for directories nook writes
    /// (a fine-tuned encoder keeps its base model's prompts).
    pub fn sentence_transformers_config(&self) -> String {
        let mut prompts = serde_json::Map::new();
        if !self.query.is_empty() {
            prompts.insert("query".into(), self.query.clone().into());
        }
        if !self.document.is_empty() {
            prompts.insert("document".into(), self.document.clone().into());
        }
        serde_json::json!({ "prompts": prompts, "default_prompt_name": null }).to_string()
    }
}

fn prefixed<'a>(prefix: &str, text: &'a str) -> Cow<'a, str> {
    if prefix.is_empty() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{prefix}{text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Prompts> {
        Prompts::from_sentence_transformers(json.as_bytes())
    }

    #[test]
    fn reads_query_and_document_prompts_as_sentence_transformers_does() {
        let p = read(r#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#).unwrap();
        assert_eq!(p, Prompts { query: "query: ".into(), document: "passage: ".into() });
        // `document` wins over `passage` and `corpus`, as in `encode_document`.
        let p = read(r#"{"prompts": {"corpus": "c: ", "document": "d: ", "passage": "p: "}}"#).unwrap();
        assert_eq!(p.document, "d: ");
        // The default prompt fills a side without its own.
        let p = read(r#"{"prompts": {"query": "q: ", "both": "b: "}, "default_prompt_name": "both"}"#).unwrap();
        assert_eq!(p, Prompts { query: "q: ".into(), document: "b: ".into() });
    }

    #[test]
    fn a_config_without_prompts_has_none() {
        // all-MiniLM-L6-v2's file holds only version numbers.
        let p = read(r#"{"__version__": {"sentence_transformers": "2.0.0"}}"#).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.query("a film"), "a film");
        assert!(matches!(p.document("a film"), Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_what_it_cannot_follow() {
        let e = read(r#"{"prompts": {"query": "q: "}, "default_prompt_name": "nope"}"#).unwrap_err();
        assert!(e.to_string().contains("default_prompt_name `nope`"), "{e}");
        let e = read(r#"{"prompts": {"query": 3}}"#).unwrap_err();
        assert!(e.to_string().contains(PROMPTS_FILE), "{e}");
        let long = "x".repeat(MAX_PROMPT_BYTES + 1);
        let e = read(&format!(r#"{{"prompts": {{"query": "{long}"}}}}"#)).unwrap_err();
        assert!(e.to_string().contains("query prompt"), "{e}");
    }

    #[test]
    fn the_written_config_reads_back() {
        for p in [
            Prompts::default(),
            Prompts { query: "query: ".into(), document: "passage: ".into() },
            Prompts { query: "query: ".into(), document: String::new() },
        ] {
            assert_eq!(read(&p.sentence_transformers_config()).unwrap(), p);
        }
        let p = Prompts { query: "query: ".into(), document: "passage: ".into() };
        assert_eq!(p.query("space"), "query: space");
        assert_eq!(p.document("Alien (1979)"), "passage: Alien (1979)");
    }
}
