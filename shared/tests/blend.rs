//! The calibrated blend of history and query: query columns, per-request weights, and scale
//! invariance (what a person types must steer however the two parts' raw scores compare).

use nook_core::{Catalog, ItemMeta, Reason, Request, Scoring, TextLayout};

const N: usize = 40;

/// `N` items: cf and profile vectors on a circle (item `i` near `i ± 1`), and query columns that
/// say something else entirely: items `30..40` are about "sharks" (query direction y), the rest
/// about x.
fn catalog() -> Catalog {
    let items = (0..N)
        .map(|i| ItemMeta { id: format!("m{i}"), title: format!("Movie {i}"), year: None, genres: vec![] })
        .collect();
    let angle = |i: usize| i as f32 / N as f32 * std::f32::consts::TAU;
    let circle: Vec<f32> = (0..N).flat_map(|i| [angle(i).cos(), angle(i).sin()]).collect();
    let gram = nook_core::gramian(&circle, 2, 0.1);
    let query: Vec<f32> = (0..N).flat_map(|i| if i >= 30 { [0.1, 0.99] } else { [0.99, 0.1] }).collect();
    Catalog::new(items, circle.clone(), 2, gram, circle, 2, vec![1.0; N])
        .unwrap()
        .with_query_columns(&query, 2, None)
        .unwrap()
}

fn scoring(query_weight: f32) -> Scoring {
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.5,
        query_weight,
        like_confidence: 2.0,
        dislike_confidence: 2.0,
        recency_half_life: 0.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
        sequence: None,
    }
}

fn ids(c: &Catalog, s: &Scoring, req: &Request) -> Vec<u32> {
    c.recommend(s, req).unwrap().iter().map(|r| r.index).collect()
}

/// Liking items 5 and 6 (far from the shark items on the circle) and typing "sharks".
fn sharks(query_weight: Option<f32>) -> Request {
    Request { likes: vec![5, 6], query: Some(vec![0.0, 1.0]), k: 10, query_weight, ..Request::default() }
}

#[test]
fn query_columns_sit_beside_the_profile() {
    let c = catalog();
    assert_eq!(c.text_dim, 4);
    assert_eq!(c.layout, TextLayout { profile_dims: 2, query_offset: 2 });
    assert_eq!(c.query_dim(), 2);
    // A query of the profile's width no longer fits: it is matched against the query columns.
    assert!(c.recommend(&scoring(1.0), &Request { query: Some(vec![1.0; 4]), k: 1, ..Request::default() }).is_err());
    assert!(c.clone().with_query_columns(&[0.0; 2 * N], 2, None).is_err(), "query columns are added once");
}

#[test]
fn a_query_alone_ranks_by_its_own_columns() {
    let c = catalog();
    let req = Request { query: Some(vec![0.0, 1.0]), k: 10, ..Request::default() };
    let recs = c.recommend(&scoring(1.0), &req).unwrap();
    assert!(recs.iter().all(|r| r.index >= 30 && r.reason == Reason::MatchesYourSearch), "{recs:?}");
}

#[test]
fn the_weight_moves_the_list_from_the_history_to_the_query() {
    let c = catalog();
    let s = scoring(1.0);
    let sharky = |v: &[u32]| v.iter().filter(|&&i| i >= 30).count();
    let history = ids(&c, &s, &Request { likes: vec![5, 6], k: 10, ..Request::default() });
    assert_eq!(sharky(&history), 0, "{history:?}");
    assert_eq!(ids(&c, &s, &sharks(Some(0.0))), history, "weight 0 ignores the words");
    let counts: Vec<usize> = [0.25, 1.0, 4.0, 20.0].iter().map(|&w| sharky(&ids(&c, &s, &sharks(Some(w))))).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "more weight, more shark items: {counts:?}");
    assert_eq!(counts[3], 10, "at the largest weight the query decides: {counts:?}");
    assert_eq!(
        ids(&c, &scoring(4.0), &sharks(None)),
        ids(&c, &s, &sharks(Some(4.0))),
        "the request overrides the bundle"
    );
}

#[test]
fn raw_scales_do_not_matter() {
    // A history part a thousand times larger (cf_weight) or a query vector ten times longer
    // changes nothing: each part is divided by its lead over the catalogue. (Items 4 and 7 tie
    // exactly around the likes 5 and 6, so rounding may order them either way: compare scores.)
    let c = catalog();
    let scores = |s: &Scoring, req: &Request| -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = c.recommend(s, req).unwrap().iter().map(|r| (r.index, r.score)).collect();
        v.sort_by_key(|&(i, _)| i);
        v
    };
    let same = |a: &[(u32, f32)], b: &[(u32, f32)]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() <= 1e-4 * x.1.abs().max(1.0))
    };
    let base = scores(&scoring(1.0), &sharks(None));
    assert!(base.iter().any(|&(i, _)| i >= 30) && base.iter().any(|&(i, _)| i < 30), "a real blend: {base:?}");
    let loud_history = Scoring { cf_weight: 1000.0, text_weight: 500.0, ..scoring(1.0) };
    let loud = scores(&loud_history, &sharks(None));
    assert!(same(&loud, &base), "{loud:?} vs {base:?}");
    let long_query = Request { query: Some(vec![0.0, 10.0]), ..sharks(None) };
    let long = scores(&scoring(1.0), &long_query);
    assert!(same(&long, &base), "{long:?} vs {base:?}");
}

#[test]
fn the_blend_reports_its_scales() {
    let c = catalog();
    let s = scoring(2.0);
    let user = c.user_vector(&s, &[5], &[], Some(&[0.0, 1.0])).unwrap();
    let b = c.blend(&s, &user);
    assert!(b.history_scale > 0.0 && b.query_scale > 0.0, "{b:?}");
    assert_eq!((b.cf.len(), b.text.len()), (2, 4));
    let no_query = c.user_vector(&s, &[5], &[], None).unwrap();
    assert_eq!(c.blend(&s, &no_query).query_scale, 0.0);
}

#[test]
fn expansion_reaches_what_the_same_people_chose() {
    // Query columns: the shark block 30..40 first, then the other items by how close they are
    // to item 15 (text says nothing of the circle). The shark block's collaborative neighbours
    // on the circle are 26..30 and 0..4: only expansion can bring them in.
    let items: Vec<ItemMeta> = (0..N)
        .map(|i| ItemMeta { id: format!("m{i}"), title: format!("Movie {i}"), year: None, genres: vec![] })
        .collect();
    let angle = |i: usize| i as f32 / N as f32 * std::f32::consts::TAU;
    let circle: Vec<f32> = (0..N).flat_map(|i| [angle(i).cos(), angle(i).sin()]).collect();
    let gram = nook_core::gramian(&circle, 2, 0.1);
    let query: Vec<f32> = (0..N)
        .flat_map(|i| if i >= 30 { [0.1, 0.99] } else { [0.99, 0.1 + 0.001 * (15.0 - (i as f32 - 15.0).abs())] })
        .collect();
    let c = Catalog::new(items, circle.clone(), 2, gram, circle, 2, vec![1.0; N])
        .unwrap()
        .with_query_columns(&query, 2, None)
        .unwrap();
    let req = Request { query: Some(vec![0.0, 1.0]), k: 14, ..Request::default() };
    let near_block = |i: u32| (26..30).contains(&i) || i < 4;
    let plain = ids(&c, &scoring(1.0), &req);
    assert!(plain[..10].iter().all(|&i| i >= 30) && !plain[10..].iter().any(|&i| near_block(i)), "{plain:?}");
    let expanded = Scoring { expansion: nook_core::Expansion { items: 10, weight: 1.0 }, ..scoring(1.0) };
    let recs = c.recommend(&expanded, &req).unwrap();
    assert!(recs[10..].iter().all(|r| near_block(r.index)), "{recs:?}");
    assert!(recs.iter().all(|r| r.reason == Reason::MatchesYourSearch), "the expansion is the words' part: {recs:?}");
    // Off for a text-only model (no collaborative weight) and for a query weighed at 0.
    let text_only = Scoring { cf_weight: 0.0, ..expanded };
    let user = c.user_vector(&text_only, &[], &[], Some(&[0.0, 1.0])).unwrap();
    assert!(c.blend(&text_only, &user).query_cf.is_empty());
}

#[test]
fn out_of_range_weights_are_refused() {
    let c = catalog();
    for w in [-0.5, f32::NAN, nook_core::MAX_QUERY_WEIGHT + 1.0] {
        let err = c.recommend(&scoring(1.0), &sharks(Some(w))).unwrap_err().to_string();
        assert!(err.contains("query weight"), "{err}");
    }
}

/// With an order part the likes lift their best items twice (history and order), so the words'
/// weight counts against both: `query_weight · (1 + m)`, `m` the order part's largest value.
/// Without a query, or without likes the order part reaches, nothing changes; and a typed mood
/// wins back the list's top from a strong order part.
#[test]
fn the_words_count_against_the_likes_order_too() {
    use nook_core::sequence::{Rules, Sequence};
    // Item 6's rules point at its neighbours 7..=10 on the circle, none of them shark items.
    let p = Rules::PAD;
    let (mut index, mut weights) = (vec![p; N * 4], vec![0f32; N * 4]);
    for (slot, j) in (7..=10u32).enumerate() {
        index[6 * 4 + slot] = j;
        weights[6 * 4 + slot] = 1.0 / (slot + 1) as f32;
    }
    let c = catalog().with_rules(Rules::new(N, 4, index, weights).unwrap()).unwrap();
    let sequence = Sequence { weight: 1.5, decay: 0.9, recent: 30, similar_weight: None };
    let ordered = Scoring { sequence: Some(sequence), ..scoring(1.0) };
    let plan = |s: &Scoring, req: &Request| c.plan(s, req).unwrap();
    let query_scale = |s: &Scoring, req: &Request| plan(s, req).blend.unwrap().query_scale;
    let plain = query_scale(&scoring(1.0), &sharks(None));
    let m = plan(&ordered, &sharks(None)).sequence.iter().map(|p| p.1).fold(0f32, f32::max);
    assert!(m > 1.5, "a peaked row lifts its best item beyond the weight: {m}");
    let scaled = query_scale(&ordered, &sharks(None));
    assert!((scaled - (1.0 + m) * plain).abs() < 1e-6 * scaled, "{scaled} against (1 + {m}) x {plain}");
    // No query: the same blend. Likes the rules do not reach: the same query weight.
    let history = Request { query: None, ..sharks(None) };
    assert_eq!(plan(&ordered, &history).blend, plan(&scoring(1.0), &history).blend);
    let unreached = Request { likes: vec![5], ..sharks(None) };
    assert!(plan(&ordered, &unreached).sequence.is_empty());
    assert_eq!(query_scale(&ordered, &unreached), query_scale(&scoring(1.0), &unreached));
    // The words keep the list's top from the order part: at weight 1 the shark items lead as
    // they do without rules, and at weight 0 the order part's items do.
    let top3 = |s: &Scoring, w: Option<f32>| ids(&c, s, &sharks(w))[..3].to_vec();
    assert!(top3(&scoring(1.0), None).iter().all(|&i| i >= 30), "{:?}", top3(&scoring(1.0), None));
    assert!(
        top3(&ordered, None).iter().all(|&i| i >= 30),
        "the order part drowned the words: {:?}",
        top3(&ordered, None)
    );
    assert_eq!(top3(&ordered, Some(0.0)), vec![7, 8, 9]);
}
