//! Bad input stops the load with a message naming file, line and column, or is skipped and
//! counted under --skip-bad-rows. Never a panic.

mod common;

use common::*;
use nook_trainer::data::{self, BadRowLimit, Source};

fn ratings_error(ratings: &[u8]) -> String {
    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes()), ("ratings.csv", ratings)]);
    load_error(dir.path())
}

#[test]
fn malformed_number_names_file_line_and_column() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,five,200\n");
    assert!(err.ends_with("ratings.csv:3: column `rating`: expected a rating number, found \"five\""), "{err}");
}

#[test]
fn too_few_fields() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2\n");
    assert!(err.contains("ratings.csv:3: expected 4 fields (userId, movieId, rating, timestamp), found 2"), "{err}");
}

#[test]
fn nan_rating() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,1,NaN,100\n");
    assert!(err.contains("ratings.csv:2: column `rating`: rating must be a finite number, found \"NaN\""), "{err}");
}

#[test]
fn bad_timestamp() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,1,4,yesterday\n");
    assert!(err.contains("ratings.csv:2: column `timestamp`: expected a Unix timestamp in seconds"), "{err}");
}

#[test]
fn duplicate_pair_names_both_lines() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,1,4,100\n2,1,4,100\n1,1,5,300\n");
    assert!(
        err.contains("ratings.csv:4: duplicate interaction: user \"1\" and item \"1\" already appear on line 2"),
        "{err}"
    );
}

#[test]
fn unknown_item_id() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\n1,99,4,100\n");
    assert!(err.contains("ratings.csv:2: column `movieId`: item id \"99\" is not in"), "{err}");
    assert!(err.contains("movies.csv"), "{err}");
}

#[test]
fn non_utf8_field() {
    let err = ratings_error(b"userId,movieId,rating,timestamp\nb\xffd,1,4,100\n");
    assert!(err.contains("ratings.csv:2: column `userId`: not valid UTF-8 (byte 0xFF at offset 1)"), "{err}");
}

#[test]
fn empty_file_and_header_only_file() {
    let err = ratings_error(b"");
    assert!(err.ends_with("ratings.csv: file is empty: expected a header row"), "{err}");
    let err = ratings_error(b"userId,movieId,rating,timestamp\n");
    assert!(err.ends_with("ratings.csv: file has no data rows"), "{err}");
}

#[test]
fn missing_column_lists_the_header() {
    let err = ratings_error(b"user,movie,stars\n1,1,4\n");
    assert!(err.contains("ratings.csv: missing column `userId` (header is: user,movie,stars)"), "{err}");
}

#[test]
fn duplicate_item_in_catalogue() {
    let dir = dir_with(&[
        ("movies.csv", b"movieId,title,genres\n1,A (2000),Drama\n1,B (2001),Drama\n"),
        ("ratings.csv", RATINGS.as_bytes()),
    ]);
    let err = load_error(dir.path());
    assert!(err.contains("movies.csv:3: column `movieId`: item id \"1\" appears twice"), "{err}");
}

#[test]
fn skip_bad_rows_counts_and_keeps_the_good_ones() {
    let ratings = b"userId,movieId,rating,timestamp\n1,1,4,100\n1,2,x,200\n2,99,4,1\n2,2,4,5\n2,2,3,6\n";
    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes()), ("ratings.csv", ratings)]);
    // Three of the rows are bad: more than the default 10%, so it takes a raised limit.
    let err = load_dir(dir.path(), true).unwrap_err().to_string();
    assert!(err.contains("are malformed, over --max-bad-rows 10%"), "{err}");
    let source = Source {
        data: Some(dir.path().to_owned()),
        skip_bad_rows: true,
        max_bad_rows: BadRowLimit::Rows(3),
        ..Source::default()
    };
    let d = data::load(&source).unwrap();
    assert_eq!(d.interactions.len(), 2);
    let s = &d.skipped;
    assert_eq!(s.skipped, 3);
    assert_eq!(s.rows, 5 + MOVIES.lines().count() - 1, "every data row read is counted");
    assert_eq!(s.by_reason["ratings.csv column `rating`"], 1, "{:?}", s.by_reason);
    assert_eq!(s.by_reason["ratings.csv column `movieId`"], 1, "{:?}", s.by_reason);
    assert_eq!(s.first.len(), 3);
    assert!(s.first[0].contains("ratings.csv:3: column `rating`"), "{:?}", s.first);
    assert!(s.first[1].contains("ratings.csv:4: column `movieId`"), "{:?}", s.first);
    assert!(s.first[2].contains("ratings.csv:6: duplicate interaction"), "{:?}", s.first);
    let tight = Source { max_bad_rows: BadRowLimit::Rows(2), ..source };
    assert!(data::load(&tight).unwrap_err().to_string().contains("3 of"), "one over the count refuses");
}

#[test]
fn skipping_never_hides_file_level_errors() {
    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes()), ("ratings.csv", b"")]);
    assert!(load_dir(dir.path(), true).is_err());
}

#[test]
fn all_rows_bad_is_an_error_even_when_skipping() {
    let dir = dir_with(&[
        ("movies.csv", MOVIES.as_bytes()),
        ("ratings.csv", b"userId,movieId,rating,timestamp\n1,1,nan,1\n"),
    ]);
    let err = load_dir(dir.path(), true).unwrap_err().to_string();
    assert!(err.contains("no usable interactions"), "{err}");
}

#[test]
fn generic_csv_errors_name_the_file() {
    let dir = dir_with(&[("inter.csv", b"user,item,rating\nu,a,\n")]);
    let err = load_generic(&dir.path().join("inter.csv"), None).unwrap_err().to_string();
    assert!(err.contains("inter.csv:2: column `rating`: empty rating"), "{err}");
    let dir = dir_with(&[("inter.csv", b"who,what\n")]);
    let err = load_generic(&dir.path().join("inter.csv"), None).unwrap_err().to_string();
    assert!(err.contains("missing column `user`"), "{err}");
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes())]);
    let source = nook_trainer::data::Source {
        data: Some(dir.path().to_owned()),
        format: Some(nook_trainer::data::Format::Movielens),
        ..Default::default()
    };
    let err = nook_trainer::data::load(&source).unwrap_err().to_string();
    assert!(err.contains("ratings.csv: No such file or directory"), "{err}");
}

#[test]
fn a_row_with_an_unterminated_quote_is_reported_not_swallowed() {
    let err = ratings_error(
        b"userId,movieId,rating,timestamp
1,1,4,100
\"2,1,4,100\n",
    );
    assert!(err.contains("ratings.csv:3"), "{err}");
}
