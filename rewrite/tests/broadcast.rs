//! Shape and indexing rules: file cases (snapshots) and guards.

mod common;

use common::{RULES, assert_fired, assert_not_fired, check, program};

#[test]
fn broadcast_file() {
    let cases = [
        ("transpose chain → one transpose", "%x: f64[2,3,4]", "f64[3,2,4]", "%0:f64[4,3,2] = transpose[perm=[2, 1, 0]] %x\n%1:f64[3,2,4] = transpose[perm=[1, 2, 0]] %0", "%1"),
        ("transpose back and forth → x", "%x: f64[2,3]", "f64[2,3]", "%0:f64[3,2] = transpose[perm=[1, 0]] %x\n%1:f64[2,3] = transpose[perm=[1, 0]] %0", "%1"),
        ("reshape chain → one reshape", "%x: f64[6]", "f64[3,2]", "%0:f64[2,3] = reshape[shape=[2,3]] %x\n%1:f64[1,2,3] = expand_dims[axis=0] %0\n%2:f64[3,2] = reshape[shape=[3,2]] %1", "%2"),
        ("broadcast of a scalar folded into its consumer", "%x: f64[], %y: f64[3]", "f64[3]", "%0:f64[3] = broadcast_to[shape=[3]] %x\n%1:f64[3] = exp %0\n%2:f64[3] = mul %1, %y", "%2"),
        ("gather of a constant range → slice", "%x: f64[5,2]", "f64[3,2]", "%i:i64[3] = const [1, 2, 3]\n%0:f64[3,2] = gather[axis=0] %x, %i", "%0"),
        ("gather of a strided range → slice", "%x: f64[6]", "f64[3]", "%i:i64[3] = const [5, 3, 1]\n%0:f64[3] = gather[axis=0] %x, %i", "%0"),
        ("scatter_add of zeros → zeros", "%x: f64[3]", "f64[3]", "%u:f64[2] = const [0.0, 0.0]\n%i:i64[2] = const [0, 2]\n%0:f64[3] = scatter_add[axis=0, size=3] %u, %i\n%1:f64[3] = add %0, %x", "%1"),
        ("scatter_add with the identity index → updates", "%u: f64[3]", "f64[3]", "%i:i64[3] = const [0, 1, 2]\n%0:f64[3] = scatter_add[axis=0, size=3] %u, %i", "%0"),
        ("sum of scatter_adds → one scatter_add", "%u: f64[2], %v: f64[1], %w: f64[2]", "f64[5]", "%i:i64[2] = const [0, 3]\n%j:i64[1] = const [3]\n%k:i64[2] = const [4, 1]\n%0:f64[5] = scatter_add[axis=0, size=5] %u, %i\n%1:f64[5] = scatter_add[axis=0, size=5] %v, %j\n%2:f64[5] = scatter_add[axis=0, size=5] %w, %k\n%3:f64[5] = add %0, %1\n%4:f64[5] = add %3, %2", "%4"),
        ("scatter_adds onto blocks of places → a concatenation", "%u: f64[3], %v: f64[], %w: f64[]", "f64[5]", "%i:i64[3] = const [1, 2, 3]\n%j:i64[1] = const [4]\n%k:i64[1] = const [0]\n%a:f64[1] = broadcast_to[shape=[1]] %v\n%b:f64[1] = broadcast_to[shape=[1]] %w\n%0:f64[5] = scatter_add[axis=0, size=5] %u, %i\n%1:f64[5] = scatter_add[axis=0, size=5] %a, %j\n%2:f64[5] = scatter_add[axis=0, size=5] %b, %k\n%3:f64[5] = add %0, %1\n%4:f64[5] = add %3, %2", "%4"),
        ("nested concatenations → one", "%u: f64[2], %v: f64[1], %w: f64[3]", "f64[6]", "%0:f64[3] = concatenate[axis=0] %u, %v\n%1:f64[6] = concatenate[axis=0] %w, %0", "%1"),
        ("scatter_adds of rows → one scatter_add", "%u: f64[2,3], %v: f64[1,3]", "f64[4,3]", "%i:i64[2] = const [0, 2]\n%j:i64[1] = const [2]\n%0:f64[4,3] = scatter_add[axis=0, size=4] %u, %i\n%1:f64[4,3] = scatter_add[axis=0, size=4] %v, %j\n%2:f64[4,3] = add %0, %1", "%2"),
    ];
    let mut out = String::new();
    for (title, sig, ret, body, r) in cases {
        out.push_str(&check(title, &program(sig, ret, body, r), RULES));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn scatter_add_of_pieces_is_a_concatenation_only_when_blocks_tile_the_result() {
    let case = |idx: &str| {
        let body = format!("%i:i64[4] = const [{idx}]\n%c:f64[4] = concatenate[axis=0] %u, %v\n%0:f64[4] = scatter_add[axis=0, size=4] %c, %i");
        program("%u: f64[2], %v: f64[2]", "f64[4]", &body, "%0")
    };
    assert_fired(&case("2, 3, 0, 1"), "scatter_add_blocks");
    assert_not_fired(&case("3, 2, 0, 1"), "scatter_add_blocks"); // a piece reversed
    assert_not_fired(&case("1, 2, 0, 1"), "scatter_add_blocks"); // overlapping blocks
    assert_not_fired(&case("0, 1, 3, 2"), "scatter_add_blocks");
    // A concatenation used elsewhere too is kept, not spliced into its user.
    let shared = "%0:f64[3] = concatenate[axis=0] %u, %v\n%1:f64[6] = concatenate[axis=0] %0, %0";
    assert_not_fired(&program("%u: f64[2], %v: f64[1]", "f64[6]", shared, "%1"), "concat_flatten");
}

#[test]
fn gather_of_an_irregular_index_stays() {
    let src = program("%x: f64[5]", "f64[3]", "%i:i64[3] = const [0, 1, 3]\n%0:f64[3] = gather[axis=0] %x, %i", "%0");
    assert_not_fired(&src, "gather_range_to_slice");
    let repeated = program("%x: f64[5]", "f64[3]", "%i:i64[3] = const [2, 2, 2]\n%0:f64[3] = gather[axis=0] %x, %i", "%0");
    assert_not_fired(&repeated, "gather_range_to_slice");
}

#[test]
fn scatter_add_with_a_partial_index_stays() {
    let src = program("%u: f64[2]", "f64[3]", "%i:i64[2] = const [0, 1]\n%0:f64[3] = scatter_add[axis=0, size=3] %u, %i", "%0");
    assert_not_fired(&src, "scatter_add_trivial");
    let full = program("%u: f64[3]", "f64[3]", "%i:i64[3] = const [0, 1, 2]\n%0:f64[3] = scatter_add[axis=0, size=3] %u, %i", "%0");
    assert_fired(&full, "scatter_add_trivial");
}

#[test]
fn scatter_adds_used_elsewhere_or_of_other_shapes_stay() {
    let shared = program(
        "%u: f64[2], %v: f64[1]",
        "(f64[5], f64[5])",
        "%i:i64[2] = const [0, 3]\n%j:i64[1] = const [3]\n%0:f64[5] = scatter_add[axis=0, size=5] %u, %i\n%1:f64[5] = scatter_add[axis=0, size=5] %v, %j\n%2:f64[5] = add %0, %1",
        "%2, %0",
    );
    assert_not_fired(&shared, "scatter_add_merge");
    let other_axis = program(
        "%u: f64[2,2], %v: f64[2,1]",
        "f64[2,2]",
        "%i:i64[2] = const [0, 1]\n%j:i64[1] = const [1]\n%0:f64[2,2] = scatter_add[axis=0, size=2] %u, %i\n%1:f64[2,2] = scatter_add[axis=1, size=2] %v, %j\n%2:f64[2,2] = add %0, %1",
        "%2",
    );
    assert_not_fired(&other_axis, "scatter_add_merge");
}
