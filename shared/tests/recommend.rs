//! Ranking through nook-core's one scoring path: likes, dislikes, queries, diversity, reasons.

use nook_core::{Catalog, ItemMeta, Projection, Reason, Request, Scoring};

/// Four items: 0 and 1 alike (cf and text), 2 and 3 alike.
fn catalog() -> Catalog {
    let items = (0..4)
        .map(|i| ItemMeta { id: format!("m{i}"), title: format!("Movie {i}"), year: None, genres: vec![] })
        .collect();
    let cf = vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9];
    let gram = nook_core::gramian(&cf, 2, 0.1);
    let text = vec![1.0, 0.0, 0.98, 0.199, 0.0, 1.0, 0.199, 0.98];
    Catalog::new(items, cf, 2, gram, text, 2, vec![5.0, 1.0, 3.0, 2.0]).unwrap()
}

fn scoring() -> Scoring {
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.5,
        query_weight: 1.0,
        like_confidence: 2.0,
        dislike_confidence: 2.0,
        recency_half_life: 0.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
        sequence: None,
    }
}

#[test]
fn likes_pull_in_similar_items_with_a_reason() {
    let c = catalog();
    let recs = c.recommend(&scoring(), &Request { likes: vec![0], k: 2, ..Request::default() }).unwrap();
    assert_eq!(recs[0].index, 1);
    assert_eq!(recs[0].reason, Reason::BecauseYouLiked { item: 0 });
    assert!(recs.iter().all(|r| r.index != 0), "liked items are not recommended");
}

#[test]
fn a_query_alone_ranks_by_text_and_says_so() {
    let c = catalog();
    let req = Request { query: Some(vec![0.0, 1.0]), k: 1, ..Request::default() };
    let recs = c.recommend(&scoring(), &req).unwrap();
    assert_eq!((recs[0].index, &recs[0].reason), (2, &Reason::MatchesYourSearch));
}

#[test]
fn nothing_to_go_on_means_popular() {
    let recs = catalog().recommend(&scoring(), &Request { k: 2, ..Request::default() }).unwrap();
    assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(recs[0].reason, Reason::Popular);
}

#[test]
fn title_search_ranks_prefix_then_word_then_substring() {
    let mut c = catalog();
    for (item, title) in c.items.iter_mut().zip(["Star Wars", "Lone Star", "Starship Troopers", "Dark Star"]) {
        item.title = title.into();
    }
    assert_eq!(c.search_titles("star", 10), vec![0, 2, 3, 1]);
    assert_eq!(c.search_titles("  STAR w", 10), vec![0]);
    assert!(c.search_titles("", 10).is_empty());
    assert_eq!(c.search_titles("ar", 2).len(), 2);
}

#[test]
fn projected_catalogs_project_queries() {
    let c = catalog();
    // Swap the two text dimensions: a query along x now matches items strong in y.
    let p = Projection::new(vec![0.0, 0.0], vec![0.0, 1.0, 1.0, 0.0], 2).unwrap();
    let c = c.with_projection(p).unwrap();
    let req = Request { query: Some(vec![1.0, 0.0]), k: 1, ..Request::default() };
    assert_eq!(c.recommend(&scoring(), &req).unwrap()[0].index, 2);
    assert!(Projection::new(vec![0.0; 3], vec![0.0; 5], 2).is_err());
}

#[test]
fn recent_likes_weigh_more() {
    let s = Scoring { recency_half_life: 1.0, ..scoring() };
    assert_eq!(s.like_weights(3), vec![0.25, 0.5, 1.0]);
    assert_eq!(scoring().like_weights(2), vec![1.0, 1.0]);
    let c = catalog();
    // Liked 0 long ago and 2 just now: recency favours 2's neighbour 3 over 0's neighbour 1.
    let margin = |s: &Scoring| {
        let mut out = vec![0f32; 4];
        c.score(s, &c.user_vector(s, &[0, 2], &[], None).unwrap(), &mut out);
        out[3] - out[1]
    };
    assert!(margin(&s) > margin(&scoring()), "{} vs {}", margin(&s), margin(&scoring()));
}

#[test]
fn diversity_spreads_the_list_across_neighbourhoods() {
    let c = catalog();
    let s = scoring();
    // Liking nothing but a query between the two groups: relevance alone may take both items
    // of one group first; full diversity alternates groups.
    let base = Request { query: Some(vec![0.8, 0.6]), k: 2, ..Request::default() };
    let plain = c.recommend(&s, &base).unwrap();
    let diverse = c.recommend(&s, &Request { diversity: 0.9, ..base.clone() }).unwrap();
    let group = |i: u32| i / 2;
    assert_eq!(group(plain[0].index), group(plain[1].index), "{plain:?}");
    assert_ne!(group(diverse[0].index), group(diverse[1].index), "{diverse:?}");
    assert_eq!(diverse[0].index, plain[0].index, "the most relevant item still leads");
    let bad = c.recommend(&s, &Request { diversity: 1.5, ..base });
    assert!(bad.is_err());
}

#[test]
fn bad_requests_are_errors() {
    let c = catalog();
    assert!(c.recommend(&scoring(), &Request { likes: vec![9], k: 1, ..Request::default() }).is_err());
    assert!(c.recommend(&scoring(), &Request { query: Some(vec![1.0]), k: 1, ..Request::default() }).is_err());
    assert!(c.index_of("nope").is_err());
    assert_eq!(c.index_of("m3").unwrap(), 3);
}

#[test]
fn dislikes_pull_their_score_towards_zero_and_are_excluded() {
    let c = catalog();
    let s = scoring();
    // In implicit ALS a dislike is a confident zero: it lowers the disliked item's predicted
    // preference (here raised by liking its neighbour 3).
    let liked = c.user_vector(&s, &[0, 3], &[], None).unwrap();
    let both = c.user_vector(&s, &[0, 3], &[2], None).unwrap();
    let (mut a, mut b) = (vec![0f32; 4], vec![0f32; 4]);
    c.score(&s, &liked, &mut a);
    c.score(&s, &both, &mut b);
    assert!(b[2] < a[2], "disliking 2 lowers its score: {} -> {}", a[2], b[2]);
    let recs = c.recommend(&s, &Request { likes: vec![0], dislikes: vec![2], k: 4, ..Request::default() }).unwrap();
    assert!(recs.iter().all(|r| r.index != 2 && r.index != 0));
    assert_eq!(recs.len(), 2);
}
