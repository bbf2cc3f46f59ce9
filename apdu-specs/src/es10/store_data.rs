//! STORE DATA segmentation of ES10 payloads (GP Card Spec §11.11, SGP.22 §5.7.2),
//! sans-IO: the card's reassembler and the terminal's segmenter.
//!
//! P1 `11` = more blocks follow, `91` = last block; P2 = block number from `00`.
//! lpac sends blocks of 120 bytes (`LPAC_CUSTOM_ES10X_MSS`, 6..255) as case 3 APDUs.

use crate::Status;

/// P1 of a block that more blocks follow.
pub const P1_MORE_BLOCKS: u8 = 0x11;
/// P1 of the last block.
pub const P1_LAST_BLOCK: u8 = 0x91;
/// lpac's default segment size.
pub const DEFAULT_MSS: usize = 120;
/// Largest block (short Lc).
pub const MAX_BLOCK: usize = 255;
/// Largest reassembled payload the card accepts.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Why a STORE DATA block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreDataError {
    #[error("STORE DATA block {got:02X} arrived where block {expected:02X} was expected; restart the sequence at block 00")]
    WrongBlockNumber { expected: u16, got: u8 },
    #[error("STORE DATA P1 {0:02X} is not 11 (more blocks) or 91 (last block)")]
    UnexpectedP1(u8),
    #[error("STORE DATA block of {0} bytes exceeds 255")]
    BlockTooLong(usize),
    #[error("ES10 payload exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("segment size {0} is outside 1..=255")]
    BadSegmentSize(usize),
}

impl StoreDataError {
    /// The status word the card answers.
    pub fn status(&self) -> Status {
        match self {
            StoreDataError::WrongBlockNumber { .. } | StoreDataError::UnexpectedP1(_) => {
                Status::IncorrectP1P2
            }
            StoreDataError::BlockTooLong(_) | StoreDataError::BadSegmentSize(_) => {
                Status::WrongLength
            }
            StoreDataError::TooLarge { .. } => Status::NotEnoughMemory,
        }
    }
}

/// What a block did to the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDataProgress {
    /// More blocks are expected; the card answers `9000` with no data.
    Incomplete,
    /// The last block arrived; here is the whole payload.
    Complete(Vec<u8>),
}

/// The card's reassembler, one per logical channel.
///
/// Block `00` always starts a new sequence (an abandoned one is dropped). Any error
/// also drops the sequence, so the terminal's retry starts cleanly at block `00`.
#[derive(Debug, Clone, Default)]
pub struct StoreDataAssembler {
    buf: Vec<u8>,
    /// Next expected block number; `None` when no sequence is open.
    next: Option<u16>,
}

impl StoreDataAssembler {
    pub fn new() -> StoreDataAssembler {
        StoreDataAssembler::default()
    }

    /// Drop any sequence in progress (channel closed, application deselected, reset).
    pub fn reset(&mut self) {
        self.buf = Vec::new();
        self.next = None;
    }

    /// Whether a sequence is open (some block received, last one not yet).
    pub fn in_progress(&self) -> bool {
        self.next.is_some()
    }

    /// Feed one `80 E2 P1 P2 Lc data` block.
    pub fn feed(
        &mut self,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<StoreDataProgress, StoreDataError> {
        let result = self.feed_inner(p1, p2, data);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn feed_inner(
        &mut self,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<StoreDataProgress, StoreDataError> {
        let last = match p1 {
            P1_MORE_BLOCKS => false,
            P1_LAST_BLOCK => true,
            other => return Err(StoreDataError::UnexpectedP1(other)),
        };
        if data.len() > MAX_BLOCK {
            return Err(StoreDataError::BlockTooLong(data.len()));
        }
        if p2 == 0 {
            self.buf.clear();
        } else {
            let expected = self.next.unwrap_or(0);
            if u16::from(p2) != expected {
                return Err(StoreDataError::WrongBlockNumber { expected, got: p2 });
            }
        }
        if self.buf.len() + data.len() > MAX_PAYLOAD {
            return Err(StoreDataError::TooLarge { limit: MAX_PAYLOAD });
        }
        self.buf.extend_from_slice(data);
        if last {
            self.next = None;
            Ok(StoreDataProgress::Complete(std::mem::take(&mut self.buf)))
        } else {
            self.next = Some(u16::from(p2) + 1);
            Ok(StoreDataProgress::Incomplete)
        }
    }
}

/// One STORE DATA block: `(p1, p2, data)`.
pub type Block<'a> = (u8, u8, &'a [u8]);

/// Split `payload` into STORE DATA blocks of at most `mss` bytes: `(p1, p2, chunk)`.
/// An empty payload is one empty last block.
pub fn segment(payload: &[u8], mss: usize) -> Result<Vec<Block<'_>>, StoreDataError> {
    if !(1..=MAX_BLOCK).contains(&mss) {
        return Err(StoreDataError::BadSegmentSize(mss));
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreDataError::TooLarge { limit: MAX_PAYLOAD });
    }
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(mss).collect()
    };
    let count = chunks.len();
    if count > 256 {
        return Err(StoreDataError::TooLarge { limit: 256 * mss });
    }
    Ok(chunks
        .into_iter()
        .zip(0u8..=255)
        .map(|(chunk, n)| {
            let p1 = if usize::from(n) + 1 == count {
                P1_LAST_BLOCK
            } else {
                P1_MORE_BLOCKS
            };
            (p1, n, chunk)
        })
        .collect())
}

/// The C-APDUs `cla E2 P1 P2 Lc data` (case 3, no Le, like lpac) carrying `payload`.
/// `cla` is used as given: `0x80 | channel` for channels 0-3.
pub fn store_data_apdus(
    cla: u8,
    payload: &[u8],
    mss: usize,
) -> Result<Vec<Vec<u8>>, StoreDataError> {
    Ok(segment(payload, mss)?
        .into_iter()
        .map(|(p1, p2, chunk)| {
            let mut apdu = Vec::with_capacity(5 + chunk.len());
            // chunk.len() <= mss <= 255, checked by `segment`.
            apdu.extend_from_slice(&[cla, crate::ins::gp::STORE_DATA, p1, p2, chunk.len() as u8]);
            apdu.extend_from_slice(chunk);
            apdu
        })
        .collect())
}
