//! Requests by item id, as the browser and `nook recommend` send them: ids a catalogue update
//! withdrew are skipped and named, never fatal; "more like this" never returns its subject.

mod common;

use common::tiny_bundle;
use nook_core::bundle::{IdRequest, Skipped};
use nook_core::NookError;

#[test]
fn unknown_ids_are_skipped_and_named_and_the_rest_still_count() {
    let b = tiny_bundle();
    let with_unknown = IdRequest {
        likes: vec!["withdrawn".into(), "a".into()],
        dislikes: vec!["gone".into()],
        k: 2,
        ..Default::default()
    };
    let recs = b.recommend(&with_unknown).unwrap();
    assert_eq!(recs.skipped, Skipped { likes: vec!["withdrawn".into()], dislikes: vec!["gone".into()] });
    let known_only = b.recommend(&IdRequest { likes: vec!["a".into()], k: 2, ..Default::default() }).unwrap();
    assert!(known_only.skipped.is_empty());
    assert_eq!(recs.items, known_only.items, "the known like ranks exactly as without the unknown ids");
    assert!(recs.items.iter().all(|r| r.id != "a"));
    assert_eq!(recs.items[0].reason, "because you liked Toy Story");

    let all_unknown = b.recommend(&IdRequest { likes: vec!["x".into()], k: 3, ..Default::default() }).unwrap();
    assert_eq!(all_unknown.skipped.likes, vec!["x".to_string()]);
    assert_eq!(all_unknown.items.len(), 3, "nothing known left: popular items, not an error");
    assert!(all_unknown.items.iter().all(|r| r.reason_kind == "popular"));
}

#[test]
fn skipped_ids_round_trip_through_json() {
    let b = tiny_bundle();
    let recs = b.recommend(&IdRequest { likes: vec!["zz".into()], k: 1, ..Default::default() }).unwrap();
    let json = serde_json::to_value(&recs).unwrap();
    assert_eq!(json["skipped"], serde_json::json!({"likes": ["zz"], "dislikes": []}));
}

#[test]
fn more_like_this_excludes_its_subject_and_names_it() {
    let b = tiny_bundle();
    let similar = b.similar("a", 5, &[]).unwrap();
    assert_eq!(similar.len(), 2, "every other item, at most");
    assert!(similar.iter().all(|r| r.id != "a"));
    assert!(similar.iter().all(|r| r.reason == "similar to Toy Story" && r.reason_kind == "similar"));
    assert!(similar.iter().all(|r| r.because.as_deref() == Some("a")));
    assert!(similar.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    let excluded = b.similar("a", 5, &["b".into(), "not-an-item".into()]).unwrap();
    assert_eq!(excluded.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["c"]);
}

#[test]
fn more_like_an_unknown_item_is_an_error() {
    let b = tiny_bundle();
    match b.similar("nope", 5, &[]) {
        Err(NookError::UnknownItem(id)) => assert_eq!(id, "nope"),
        other => panic!("expected UnknownItem, got {other:?}"),
    }
    assert!(b.similar("a", 0, &[]).is_err(), "k = 0 is refused");
}
