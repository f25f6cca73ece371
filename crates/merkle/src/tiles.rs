//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): which tiles cover a tree, their paths, and
//! the hashes they hold.
//!
//! A tiled log serves its Merkle tree as immutable static files instead of answering proof
//! queries. A tile at level `L` and index `N` holds up to 256 consecutive hashes from tree level
//! `8 * L`: the perfect subtrees of `256^L` leaves numbered `256 * N` to `256 * N + 255`. Level 0
//! tiles hold leaf hashes. Clients fetch the tiles they need and rebuild the intermediate levels
//! by hashing, so any proof needs only a handful of fetches.
//!
//! For a tree of size `s`, level `L` has `floor(s / 256^L)` complete hashes: that many divided
//! by 256 full tiles, plus one *partial* tile with the remainder when it is not zero. Partial
//! tiles carry their width in the path, so each tile path names one immutable content.
//!
//! Paths are `tile/<L>/<N>[.p/<W>]` for hash tiles and `tile/entries/<N>[.p/<W>]` for entry
//! bundles (the raw entries behind a level 0 tile). `<L>` is a decimal level in 0..=63, `<W>` a
//! decimal width in 1..=255, both without leading zeros, and `<N>` is written in 3-digit groups,
//! all but the last prefixed with `x` (1234067 is `x001/x234/067`) so that no directory ever
//! holds more than 1000 entries and no file name collides with a directory name.

use std::fmt;
use std::str::FromStr;

use crate::hash::Hash;
use crate::tree::{Error, HashReader};

/// Tree levels spanned by one tile: a tile is a perfect subtree of height 8.
pub const TILE_HEIGHT: u8 = 8;

/// Hashes in a full tile (`2^TILE_HEIGHT`).
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;

/// Highest tile level a path may name, per the specification.
pub const MAX_TILE_LEVEL: u8 = 63;

/// Why a tile or tile path is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A tile level above [`MAX_TILE_LEVEL`].
    #[error("tile level {level} is out of range 0..=63")]
    LevelOutOfRange {
        /// The level given.
        level: u8,
    },
    /// A tile width of 0 or above [`TILE_WIDTH`].
    #[error("tile width {width} is out of range 1..=256")]
    WidthOutOfRange {
        /// The width given.
        width: u16,
    },
    /// The path does not start with `tile/`.
    #[error("path {path:?} does not start with \"tile/\"")]
    NotATilePath {
        /// The path given.
        path: String,
    },
    /// The path stops before the tile index.
    #[error("tile path {path:?} has no tile index")]
    MissingIndex {
        /// The path given.
        path: String,
    },
    /// The level segment is not a canonical decimal number in 0..=63.
    #[error("tile level {level:?} is not a decimal number in 0..=63 without leading zeros")]
    BadLevel {
        /// The level segment as found.
        level: String,
    },
    /// One element of the index is not three digits, or lacks or misplaces its `x` prefix.
    #[error("tile index element {element:?} is not {expected}")]
    BadIndexElement {
        /// The element as found.
        element: String,
        /// What that element should look like.
        expected: &'static str,
    },
    /// The index starts with `x000`, so a shorter encoding of the same number exists.
    #[error("tile index {index:?} starts with x000 and is not canonical")]
    NonCanonicalIndex {
        /// The index as found.
        index: String,
    },
    /// The index does not fit in 64 bits.
    #[error("tile index {index:?} does not fit in 64 bits")]
    IndexTooLarge {
        /// The index as found.
        index: String,
    },
    /// The partial width is not a canonical decimal number in 1..=255.
    #[error(
        "partial tile width {width:?} is not a decimal number in 1..=255 without leading zeros"
    )]
    BadWidth {
        /// The width segment as found.
        width: String,
    },
    /// Something follows the partial width.
    #[error("unexpected {rest:?} after the tile width")]
    TrailingSegments {
        /// Everything after the width.
        rest: String,
    },
}

/// One tile of Merkle tree hashes: up to 256 consecutive hashes at tree level `8 * level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

impl Tile {
    /// A tile at `level` (0..=63) and `index` holding `width` hashes (1..=256; 256 is full).
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, TileError> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::LevelOutOfRange { level });
        }
        check_width(width)?;
        Ok(Self {
            level,
            index,
            width,
        })
    }

    /// The tile level; its hashes are at tree level `8 * level`.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The tile's position among the tiles of its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many hashes the tile holds (256 for a full tile).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile holds fewer than 256 hashes and so names its width in its path.
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The tile's path below the log prefix, `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tile/{}/", self.level)?;
        write_index_and_width(f, self.index, self.width)
    }
}

/// One bundle of log entries: the entries whose leaf hashes form the level 0 tile of the same
/// index and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryBundle {
    index: u64,
    width: u16,
}

impl EntryBundle {
    /// The bundle at `index` holding `width` entries (1..=256; 256 is full).
    pub fn new(index: u64, width: u16) -> Result<Self, TileError> {
        check_width(width)?;
        Ok(Self { index, width })
    }

    /// The bundle's position; it holds entries from `256 * index` on.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many entries the bundle holds (256 for a full bundle).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the bundle holds fewer than 256 entries and so names its width in its path.
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The bundle's path below the log prefix, `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EntryBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tile/entries/")?;
        write_index_and_width(f, self.index, self.width)
    }
}

/// A parsed tile path: either a tile of hashes or an entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Tile(Tile),
    /// `tile/entries/<N>[.p/<W>]`.
    Entries(EntryBundle),
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TilePath::Tile(tile) => tile.fmt(f),
            TilePath::Entries(bundle) => bundle.fmt(f),
        }
    }
}

impl FromStr for TilePath {
    type Err = TileError;

    fn from_str(path: &str) -> Result<Self, TileError> {
        parse_tile_path(path)
    }
}

fn check_width(width: u16) -> Result<(), TileError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TileError::WidthOutOfRange { width });
    }
    Ok(())
}

fn write_index_and_width(f: &mut fmt::Formatter<'_>, index: u64, width: u16) -> fmt::Result {
    // u64::MAX has 20 digits, so at most 7 groups of three.
    let mut groups = [0u64; 7];
    let mut count = 0;
    let mut rest = index;
    loop {
        groups[count] = rest % 1000;
        count += 1;
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    for (i, group) in groups[..count].iter().rev().enumerate() {
        if i + 1 < count {
            write!(f, "x{group:03}/")?;
        } else {
            write!(f, "{group:03}")?;
        }
    }
    if width < TILE_WIDTH {
        write!(f, ".p/{width}")?;
    }
    Ok(())
}

/// Parses a tile or entry-bundle path as it appears below the log prefix (starting at `tile/`),
/// accepting only the canonical encoding so each resource has exactly one name.
pub fn parse_tile_path(path: &str) -> Result<TilePath, TileError> {
    let rest = path
        .strip_prefix("tile/")
        .ok_or_else(|| TileError::NotATilePath {
            path: path.to_string(),
        })?;
    let (kind, rest) = rest
        .split_once('/')
        .ok_or_else(|| TileError::MissingIndex {
            path: path.to_string(),
        })?;
    // Left to right: the level (or "entries"), then the index, then the width.
    let level = if kind == "entries" {
        None
    } else {
        let level = parse_decimal(kind, 2)
            .and_then(|level| u8::try_from(level).ok())
            .filter(|&level| level <= MAX_TILE_LEVEL)
            .ok_or_else(|| TileError::BadLevel {
                level: kind.to_string(),
            })?;
        Some(level)
    };
    if rest.is_empty() {
        return Err(TileError::MissingIndex {
            path: path.to_string(),
        });
    }
    let (index_part, width_part) = match rest.split_once(".p/") {
        Some((index, width)) => (index, Some(width)),
        None => (rest, None),
    };
    let index = parse_index(index_part)?;
    let width = match width_part {
        None => TILE_WIDTH,
        Some(width) => parse_width(width)?,
    };
    Ok(match level {
        Some(level) => TilePath::Tile(Tile {
            level,
            index,
            width,
        }),
        None => TilePath::Entries(EntryBundle { index, width }),
    })
}

/// Parses a decimal number of at most `max_digits` digits with no sign and no leading zeros.
fn parse_decimal(text: &str, max_digits: usize) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= max_digits
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    // `str::parse` alone would accept a leading `+`.
    canonical.then(|| text.parse().ok()).flatten()
}

fn parse_width(text: &str) -> Result<u16, TileError> {
    if let Some((_, rest)) = text.split_once('/') {
        return Err(TileError::TrailingSegments {
            rest: rest.to_string(),
        });
    }
    parse_decimal(text, 3)
        .and_then(|width| u16::try_from(width).ok())
        .filter(|&width| (1..TILE_WIDTH).contains(&width))
        .ok_or_else(|| TileError::BadWidth {
            width: text.to_string(),
        })
}

fn parse_index(text: &str) -> Result<u64, TileError> {
    let mut elements = text.split('/').peekable();
    let mut index: u64 = 0;
    let mut first = true;
    while let Some(element) = elements.next() {
        let last = elements.peek().is_none();
        let digits = if last {
            Some(element)
        } else {
            element.strip_prefix('x')
        };
        let expected = if last {
            "three decimal digits (the last element has no x prefix)"
        } else {
            "x followed by three decimal digits"
        };
        let group = digits
            .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| TileError::BadIndexElement {
                element: element.to_string(),
                expected,
            })?;
        if first && !last && group == 0 {
            return Err(TileError::NonCanonicalIndex {
                index: text.to_string(),
            });
        }
        first = false;
        index = index
            .checked_mul(1000)
            .and_then(|i| i.checked_add(group))
            .ok_or_else(|| TileError::IndexTooLarge {
                index: text.to_string(),
            })?;
    }
    Ok(index)
}

/// How many complete hashes tree level `8 * level` has in a tree of `size` leaves.
fn level_hashes(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// How many full (256-wide) tiles level `level` has in a tree of `size` leaves.
pub fn full_tile_count(size: u64, level: u8) -> u64 {
    level_hashes(size, level) / u64::from(TILE_WIDTH)
}

/// The partial rightmost tile of `level` in a tree of `size` leaves, if that level has one.
pub fn partial_tile(size: u64, level: u8) -> Option<Tile> {
    let hashes = level_hashes(size, level);
    let width = u16::try_from(hashes % u64::from(TILE_WIDTH)).expect("below 256");
    (width > 0).then_some(Tile {
        level,
        index: hashes / u64::from(TILE_WIDTH),
        width,
    })
}

/// The tiles of `level` that cover a tree of `size` leaves: every full tile in order, then the
/// partial one if there is one.
pub fn tiles_at_level(size: u64, level: u8) -> impl Iterator<Item = Tile> {
    let full = (0..full_tile_count(size, level)).map(move |index| Tile {
        level,
        index,
        width: TILE_WIDTH,
    });
    full.chain(partial_tile(size, level))
}

/// Every tile that covers a tree of `size` leaves, level by level from level 0.
///
/// Lazy, because a large tree has millions of level 0 tiles.
pub fn tiles_for_size(size: u64) -> impl Iterator<Item = Tile> {
    (0..=MAX_TILE_LEVEL)
        .take_while(move |&level| level_hashes(size, level) > 0)
        .flat_map(move |level| tiles_at_level(size, level))
}

/// Every entry bundle that covers a tree of `size` leaves, in order.
pub fn entry_bundles_for_size(size: u64) -> impl Iterator<Item = EntryBundle> {
    tiles_at_level(size, 0).map(|tile| EntryBundle {
        index: tile.index,
        width: tile.width,
    })
}

/// The hashes held by tile (`level`, `index`) of width `width`, read from `tree`: the subtree
/// hashes at tree level `8 * level` numbered `256 * index` to `256 * index + width - 1`.
///
/// Any width up to what the tree has complete is allowed, since a partial tile of an older tree
/// size is a prefix of the current one.
pub fn tile_hashes<R: HashReader + ?Sized>(
    tree: &R,
    level: u8,
    index: u64,
    width: u16,
) -> Result<Vec<Hash>, Error> {
    Tile::new(level, index, width)?;
    let size = tree.size();
    let available = level_hashes(size, level);
    let first = index.checked_mul(u64::from(TILE_WIDTH));
    let end = first.and_then(|first| first.checked_add(u64::from(width)));
    let (Some(first), Some(end)) = (first, end) else {
        return Err(Error::TileBeyondTree {
            level,
            index,
            width,
            size,
        });
    };
    if end > available {
        return Err(Error::TileBeyondTree {
            level,
            index,
            width,
            size,
        });
    }
    // Some hash exists at this level, so 8 * level < 64.
    let tree_level = level * TILE_HEIGHT;
    (first..end).map(|i| tree.hash_at(tree_level, i)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hash::leaf_hash;
    use crate::reference;
    use crate::tree::MemoryTree;

    fn tile(level: u8, index: u64, width: u16) -> Tile {
        Tile::new(level, index, width).expect("valid tile")
    }

    #[test]
    fn index_encoding_matches_the_specification() {
        assert_eq!(tile(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(tile(0, 0, 256).path(), "tile/0/000");
        assert_eq!(tile(1, 5, 256).path(), "tile/1/005");
        assert_eq!(tile(2, 999, 17).path(), "tile/2/999.p/17");
        assert_eq!(tile(63, 1000, 1).path(), "tile/63/x001/000.p/1");
        assert_eq!(
            tile(0, u64::MAX, 255).path(),
            "tile/0/x018/x446/x744/x073/x709/x551/615.p/255"
        );
        assert_eq!(
            EntryBundle::new(1_234_067, 256).expect("valid").path(),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(
            EntryBundle::new(3, 9).expect("valid").path(),
            "tile/entries/003.p/9"
        );
    }

    #[test]
    fn parses_canonical_paths() {
        let cases = [
            (
                "tile/0/x001/x234/067",
                TilePath::Tile(tile(0, 1_234_067, 256)),
            ),
            ("tile/63/000.p/255", TilePath::Tile(tile(63, 0, 255))),
            (
                "tile/10/x018/x446/x744/x073/x709/x551/615",
                TilePath::Tile(tile(10, u64::MAX, 256)),
            ),
            (
                "tile/entries/042.p/1",
                TilePath::Entries(EntryBundle::new(42, 1).expect("valid")),
            ),
            (
                "tile/entries/x001/000",
                TilePath::Entries(EntryBundle::new(1000, 256).expect("valid")),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse_tile_path(path), Ok(want), "{path}");
            assert_eq!(path.parse::<TilePath>(), Ok(want), "{path}");
            assert_eq!(want.to_string(), path);
        }
    }

    #[test]
    fn rejects_malformed_paths_precisely() {
        let s = |x: &str| x.to_string();
        let last = "three decimal digits (the last element has no x prefix)";
        let inner = "x followed by three decimal digits";
        let cases = [
            (
                "tiles/0/000",
                TileError::NotATilePath {
                    path: s("tiles/0/000"),
                },
            ),
            (
                "/tile/0/000",
                TileError::NotATilePath {
                    path: s("/tile/0/000"),
                },
            ),
            ("tile/0", TileError::MissingIndex { path: s("tile/0") }),
            ("tile/0/", TileError::MissingIndex { path: s("tile/0/") }),
            ("tile/64/000", TileError::BadLevel { level: s("64") }),
            ("tile/01/000", TileError::BadLevel { level: s("01") }),
            ("tile/+1/000", TileError::BadLevel { level: s("+1") }),
            ("tile/-1/000", TileError::BadLevel { level: s("-1") }),
            ("tile//000", TileError::BadLevel { level: s("") }),
            ("tile/256/000", TileError::BadLevel { level: s("256") }),
            (
                "tile/0/5",
                TileError::BadIndexElement {
                    element: s("5"),
                    expected: last,
                },
            ),
            (
                "tile/0/0005",
                TileError::BadIndexElement {
                    element: s("0005"),
                    expected: last,
                },
            ),
            (
                "tile/0/+05",
                TileError::BadIndexElement {
                    element: s("+05"),
                    expected: last,
                },
            ),
            (
                "tile/0/x001",
                TileError::BadIndexElement {
                    element: s("x001"),
                    expected: last,
                },
            ),
            (
                "tile/0/001/002",
                TileError::BadIndexElement {
                    element: s("001"),
                    expected: inner,
                },
            ),
            (
                "tile/0/X001/002",
                TileError::BadIndexElement {
                    element: s("X001"),
                    expected: inner,
                },
            ),
            (
                "tile/0/x01/002",
                TileError::BadIndexElement {
                    element: s("x01"),
                    expected: inner,
                },
            ),
            (
                "tile/0/x001//002",
                TileError::BadIndexElement {
                    element: s(""),
                    expected: inner,
                },
            ),
            (
                "tile/0/005.q/3",
                TileError::BadIndexElement {
                    element: s("005.q"),
                    expected: inner,
                },
            ),
            (
                "tile/0/005.p",
                TileError::BadIndexElement {
                    element: s("005.p"),
                    expected: last,
                },
            ),
            (
                "tile/0/x000/005",
                TileError::NonCanonicalIndex {
                    index: s("x000/005"),
                },
            ),
            (
                "tile/entries/x000/x001/005",
                TileError::NonCanonicalIndex {
                    index: s("x000/x001/005"),
                },
            ),
            (
                "tile/0/x018/x446/x744/x073/x709/x551/616",
                TileError::IndexTooLarge {
                    index: s("x018/x446/x744/x073/x709/x551/616"),
                },
            ),
            (
                "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
                TileError::IndexTooLarge {
                    index: s("x001/x000/x000/x000/x000/x000/x000/000"),
                },
            ),
            ("tile/0/005.p/0", TileError::BadWidth { width: s("0") }),
            ("tile/0/005.p/256", TileError::BadWidth { width: s("256") }),
            ("tile/0/005.p/05", TileError::BadWidth { width: s("05") }),
            ("tile/0/005.p/+5", TileError::BadWidth { width: s("+5") }),
            ("tile/0/005.p/", TileError::BadWidth { width: s("") }),
            (
                "tile/0/005.p/0000000000000000000001",
                TileError::BadWidth {
                    width: s("0000000000000000000001"),
                },
            ),
            (
                "tile/entries/005.p/256",
                TileError::BadWidth { width: s("256") },
            ),
            (
                "tile/0/005.p/5/extra",
                TileError::TrailingSegments { rest: s("extra") },
            ),
            (
                "tile/0/005.p/5/",
                TileError::TrailingSegments { rest: s("") },
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse_tile_path(path), Err(want), "{path}");
        }
        assert_eq!(
            parse_tile_path("tile/64/000").map_err(|e| e.to_string()),
            Err(s(
                "tile level \"64\" is not a decimal number in 0..=63 without leading zeros"
            ))
        );
    }

    #[test]
    fn constructors_reject_bad_levels_and_widths() {
        assert_eq!(
            Tile::new(64, 0, 1),
            Err(TileError::LevelOutOfRange { level: 64 })
        );
        assert_eq!(
            Tile::new(0, 0, 0),
            Err(TileError::WidthOutOfRange { width: 0 })
        );
        assert_eq!(
            Tile::new(0, 0, 257),
            Err(TileError::WidthOutOfRange { width: 257 })
        );
        assert_eq!(
            EntryBundle::new(0, 0),
            Err(TileError::WidthOutOfRange { width: 0 })
        );
        assert!(tile(0, 0, 255).is_partial());
        assert!(!tile(0, 0, 256).is_partial());
    }

    #[test]
    fn coverage_matches_the_specification_examples() {
        // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
        // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width
        // 17, and one partial level 2 tile of width 1."
        let tiles: Vec<Tile> = tiles_for_size(70_000).collect();
        assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
        assert_eq!(full_tile_count(70_000, 0), 273);
        assert_eq!(partial_tile(70_000, 0), Some(tile(0, 273, 112)));
        assert_eq!(full_tile_count(70_000, 1), 1);
        assert_eq!(partial_tile(70_000, 1), Some(tile(1, 1, 17)));
        assert_eq!(full_tile_count(70_000, 2), 0);
        assert_eq!(partial_tile(70_000, 2), Some(tile(2, 0, 1)));
        assert_eq!(partial_tile(70_000, 3), None);
        assert_eq!(tiles[272], tile(0, 272, 256));
        assert_eq!(
            &tiles[273..],
            &[
                tile(0, 273, 112),
                tile(1, 0, 256),
                tile(1, 1, 17),
                tile(2, 0, 1)
            ]
        );

        // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        // tile of width 1."
        let tiles: Vec<Tile> = tiles_for_size(256).collect();
        assert_eq!(tiles, vec![tile(0, 0, 256), tile(1, 0, 1)]);

        assert_eq!(tiles_for_size(0).count(), 0);
        assert_eq!(tiles_for_size(1).collect::<Vec<_>>(), vec![tile(0, 0, 1)]);
        let bundles: Vec<EntryBundle> = entry_bundles_for_size(70_000).collect();
        assert_eq!(bundles.len(), 274);
        assert_eq!(bundles[273], EntryBundle::new(273, 112).expect("valid"));

        // The top of the u64 range: level 7 holds the highest hashes and level 8 none.
        assert_eq!(partial_tile(u64::MAX, 7), Some(tile(7, 0, 255)));
        assert_eq!(partial_tile(u64::MAX, 8), None);
        assert_eq!(tiles_at_level(u64::MAX, 64).count(), 0);
        assert_eq!(
            tiles_at_level(u64::MAX, 7).collect::<Vec<_>>(),
            vec![tile(7, 0, 255)]
        );
    }

    #[test]
    fn tile_hashes_read_the_right_level() {
        let entries = reference::entries(70_000);
        let tree: MemoryTree = entries.iter().map(|e| leaf_hash(e)).collect();

        let level0 = tile_hashes(&tree, 0, 273, 112).expect("complete");
        assert_eq!(level0.len(), 112);
        assert_eq!(level0[0], leaf_hash(&entries[273 * 256]));
        assert_eq!(level0[111], leaf_hash(&entries[273 * 256 + 111]));

        let level1 = tile_hashes(&tree, 1, 1, 17).expect("complete");
        assert_eq!(level1.len(), 17);
        // Hash 16 of tile 1/001 covers leaves (256 + 16) * 256 .. (256 + 17) * 256.
        let start = (256 + 16) * 256;
        assert_eq!(level1[16], reference::mth(&entries[start..start + 256]));

        let level2 = tile_hashes(&tree, 2, 0, 1).expect("complete");
        assert_eq!(level2, vec![reference::mth(&entries[..65_536])]);

        // Prefixes of partial tiles are what older checkpoints saw.
        assert_eq!(
            tile_hashes(&tree, 1, 1, 5).expect("complete"),
            level1[..5].to_vec()
        );

        let size = 70_000;
        assert_eq!(
            tile_hashes(&tree, 0, 273, 113),
            Err(Error::TileBeyondTree {
                level: 0,
                index: 273,
                width: 113,
                size
            })
        );
        assert_eq!(
            tile_hashes(&tree, 1, 1, 256),
            Err(Error::TileBeyondTree {
                level: 1,
                index: 1,
                width: 256,
                size
            })
        );
        assert_eq!(
            tile_hashes(&tree, 3, 0, 1),
            Err(Error::TileBeyondTree {
                level: 3,
                index: 0,
                width: 1,
                size
            })
        );
        assert_eq!(
            tile_hashes(&tree, 40, 0, 1),
            Err(Error::TileBeyondTree {
                level: 40,
                index: 0,
                width: 1,
                size
            })
        );
        assert_eq!(
            tile_hashes(&tree, 0, u64::MAX, 1),
            Err(Error::TileBeyondTree {
                level: 0,
                index: u64::MAX,
                width: 1,
                size
            })
        );
        assert_eq!(
            tile_hashes(&tree, 0, 0, 0),
            Err(Error::Tile(TileError::WidthOutOfRange { width: 0 }))
        );
        assert_eq!(
            tile_hashes(&tree, 64, 0, 1),
            Err(Error::Tile(TileError::LevelOutOfRange { level: 64 }))
        );
        assert_eq!(
            tile_hashes(&tree, 0, 0, 0).map_err(|e| e.to_string()),
            Err("tile width 0 is out of range 1..=256".to_string())
        );
    }

    #[test]
    fn every_covering_tile_is_readable() {
        for size in [1u64, 255, 256, 257, 65_535, 65_536, 65_537, 70_000] {
            let tree: MemoryTree = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            for t in tiles_for_size(size) {
                let hashes = tile_hashes(&tree, t.level(), t.index(), t.width()).expect("covered");
                assert_eq!(hashes.len(), usize::from(t.width()), "{t}");
            }
        }
    }

    proptest! {
        #[test]
        fn tile_paths_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
            let t = Tile::new(level, index, width).expect("valid");
            let path = t.path();
            prop_assert_eq!(parse_tile_path(&path), Ok(TilePath::Tile(t)));
            let bundle = EntryBundle::new(index, width).expect("valid");
            prop_assert_eq!(parse_tile_path(&bundle.path()), Ok(TilePath::Entries(bundle)));
        }

        #[test]
        fn small_indices_round_trip(index in 0u64..10_000_000, width in 1u16..=256) {
            let t = Tile::new(0, index, width).expect("valid");
            prop_assert_eq!(parse_tile_path(&t.path()), Ok(TilePath::Tile(t)));
        }

        #[test]
        fn parser_never_panics_and_accepts_only_canonical_paths(path in "tile/[0-9a-z./x]{0,40}") {
            if let Ok(parsed) = parse_tile_path(&path) {
                prop_assert_eq!(parsed.to_string(), path);
            }
        }

        #[test]
        fn coverage_counts_every_hash_once(size in any::<u64>()) {
            for level in 0..=MAX_TILE_LEVEL {
                // Counted rather than iterated: level 0 of a huge tree has 2^56 tiles.
                let partial = partial_tile(size, level).map_or(0, |t| u64::from(t.width()));
                let covered = full_tile_count(size, level) * u64::from(TILE_WIDTH) + partial;
                prop_assert_eq!(covered, level_hashes(size, level));
                if level < 8 {
                    prop_assert_eq!(covered, size >> (8 * u32::from(level)));
                }
            }
        }
    }
}
