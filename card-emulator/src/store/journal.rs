//! The journal file's format: framed entries, each what one committed transaction changed,
//! for the snapshot it names; writing one from a state, finding them in bytes, applying one.
//!
//! A frame is a 12-byte header then the payload:
//!
//! ```text
//! length  u32 LE   bytes of the payload
//! !length u32 LE   its bitwise complement (a damaged length is found, never taken for a tail)
//! crc32   u32 LE   CRC-32 (IEEE) of the payload
//! payload          one line of JSON and a line feed
//! ```
//!
//! The payload: `{"generation": 7, "snapshot": "1A2B3C4D", "seq": 3, "card": {..},
//! "containers": [{..}], "files": [{"tree": "global", "index": 5, "node": {..}}]}`:
//! the snapshot it applies to (generation and CRC-32), its place after it (1, 2, ..), and
//! the parts it replaces: the card-global core (the state without file arenas and
//! containers), containers' cores (a container without its file arena, named by its ISD-P
//! AID) and single file nodes (by tree, `global` or the container's AID, and arena index).
//! The cores are borrowed views of the state: encoding an entry costs what it holds, never
//! the card's size.

use crate::state::{
    hex_bytes, AuthState, CardState, Container, ContainerId, DataObject, FileNode, GpState,
    Notifications, PinRecord, Policy, TrustAnchor,
};
use crate::store::snapshot::SnapshotId;
use crate::store::Changes;
use crate::vm::Tree;
use apdu_specs::hexfmt::upper as hexfmt;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub(crate) const HEADER: usize = 12;

/// The card-global objects other than files and containers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CardCore<'a> {
    label: Cow<'a, str>,
    #[serde(with = "cow_hex")]
    historical_bytes: Cow<'a, [u8]>,
    pins: Cow<'a, [PinRecord]>,
    data_objects: Cow<'a, [DataObject]>,
    #[serde(with = "cow_hex")]
    eid: Cow<'a, [u8]>,
    policy: Cow<'a, Policy>,
    gp: Cow<'a, GpState>,
    time_floor: u64,
    // Absent from entries written before it existed, and while empty.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    default_dp_address: Cow<'a, str>,
}

impl<'a> CardCore<'a> {
    fn of(state: &'a CardState) -> CardCore<'a> {
        // Exhaustive: a new field in the state does not compile until the journal has it.
        let CardState {
            label,
            historical_bytes,
            // Fixed at personalization: no command changes it, so no entry carries it.
            atr_protocols: _,
            // Fixed at personalization: no command changes it, so no entry carries it.
            euicc: _,
            files: _,
            pins,
            data_objects,
            containers: _,
            eid,
            policy,
            gp,
            time_floor,
            // An entry's own part (`Entry::notifications`): SCP counters change often
            // and must not copy the notification list each time.
            notifications: _,
            default_dp_address,
            // Fixed at personalization: no command changes it, so no entry carries it.
            applet_limits: _,
        } = state;
        CardCore {
            label: Cow::Borrowed(label),
            historical_bytes: Cow::Borrowed(historical_bytes),
            pins: Cow::Borrowed(pins),
            data_objects: Cow::Borrowed(data_objects),
            eid: Cow::Borrowed(eid),
            policy: Cow::Borrowed(policy),
            gp: Cow::Borrowed(gp),
            time_floor: *time_floor,
            default_dp_address: Cow::Borrowed(default_dp_address),
        }
    }

    fn apply(self, state: &mut CardState) {
        let CardState {
            label,
            historical_bytes,
            // Fixed at personalization: no command changes it, so no entry carries it.
            atr_protocols: _,
            // Fixed at personalization: no command changes it, so no entry carries it.
            euicc: _,
            files: _,
            pins,
            data_objects,
            containers: _,
            eid,
            policy,
            gp,
            time_floor,
            // An entry's own part (`Entry::notifications`).
            notifications: _,
            default_dp_address,
            // Fixed at personalization: no command changes it, so no entry carries it.
            applet_limits: _,
        } = state;
        *label = self.label.into_owned();
        *historical_bytes = self.historical_bytes.into_owned();
        *pins = self.pins.into_owned();
        *data_objects = self.data_objects.into_owned();
        *eid = self.eid.into_owned();
        *policy = self.policy.into_owned();
        *gp = self.gp.into_owned();
        *time_floor = self.time_floor;
        *default_dp_address = self.default_dp_address.into_owned();
    }
}

/// A container without its file arena.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerCore<'a> {
    #[serde(with = "cow_hex")]
    isdp_aid: Cow<'a, [u8]>,
    #[serde(with = "cow_hex")]
    iccid: Cow<'a, [u8]>,
    nickname: Cow<'a, str>,
    service_provider: Cow<'a, str>,
    profile_name: Cow<'a, str>,
    profile_class: u8,
    enabled: bool,
    pins: Cow<'a, [PinRecord]>,
    trust_anchors: Cow<'a, [TrustAnchor]>,
    auth: Cow<'a, AuthState>,
}

impl<'a> ContainerCore<'a> {
    fn of(c: &'a Container) -> ContainerCore<'a> {
        let Container {
            iccid,
            isdp_aid,
            nickname,
            service_provider,
            profile_name,
            profile_class,
            enabled,
            files: _,
            pins,
            trust_anchors,
            auth,
            // Fixed at personalization: no command changes it, so no entry carries it.
            notify: _,
            // Changed only by loading, installing and deleting (a snapshot each); an
            // instance's storage is an entry's own part (`Entry::applets`).
            load_files: _,
            applets: _,
        } = c;
        ContainerCore {
            isdp_aid: Cow::Borrowed(isdp_aid),
            iccid: Cow::Borrowed(iccid),
            nickname: Cow::Borrowed(nickname),
            service_provider: Cow::Borrowed(service_provider),
            profile_name: Cow::Borrowed(profile_name),
            profile_class: *profile_class,
            enabled: *enabled,
            pins: Cow::Borrowed(pins),
            trust_anchors: Cow::Borrowed(trust_anchors),
            auth: Cow::Borrowed(auth),
        }
    }

    /// Replace everything of `c` but its identity and files.
    fn apply(self, c: &mut Container) {
        let Container {
            iccid,
            isdp_aid: _,
            nickname,
            service_provider,
            profile_name,
            profile_class,
            enabled,
            files: _,
            pins,
            trust_anchors,
            auth,
            // Fixed at personalization: no command changes it, so no entry carries it.
            notify: _,
            // Snapshots and `Entry::applets` carry them.
            load_files: _,
            applets: _,
        } = c;
        *iccid = self.iccid.into_owned();
        *nickname = self.nickname.into_owned();
        *service_provider = self.service_provider.into_owned();
        *profile_name = self.profile_name.into_owned();
        *profile_class = self.profile_class;
        *enabled = self.enabled;
        *pins = self.pins.into_owned();
        *trust_anchors = self.trust_anchors.into_owned();
        *auth = self.auth.into_owned();
    }
}

/// One file node, by tree and arena index.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileChange<'a> {
    #[serde(with = "tree_name")]
    tree: Tree,
    index: usize,
    node: Cow<'a, FileNode>,
}

/// One committed transaction.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry<'a> {
    pub generation: u64,
    #[serde(with = "crc_hex")]
    pub snapshot: u32,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card: Option<CardCore<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    containers: Vec<ContainerCore<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileChange<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notifications: Option<Cow<'a, Notifications>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    applets: Vec<StorageChange<'a>>,
}

/// One applet instance's storage, by container and instance AID.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageChange<'a> {
    #[serde(with = "cow_hex")]
    container: Cow<'a, [u8]>,
    #[serde(with = "cow_hex")]
    instance: Cow<'a, [u8]>,
    #[serde(with = "cow_hex")]
    storage: Cow<'a, [u8]>,
}

impl<'a> Entry<'a> {
    /// The entry of `changes` in `state`, number `seq` after snapshot `id`. An error when a
    /// change names a container or file the state does not have: only a snapshot can say
    /// that.
    pub fn new(
        state: &'a CardState,
        changes: &Changes,
        id: SnapshotId,
        seq: u64,
    ) -> Result<Entry<'a>, String> {
        let container = |id: ContainerId| {
            state
                .container(id)
                .ok_or_else(|| format!("container {id} is not in the state"))
        };
        let containers = changes
            .container_cores
            .iter()
            .map(|id| container(*id).map(ContainerCore::of))
            .collect::<Result<_, _>>()?;
        let files = changes
            .files
            .iter()
            .map(|&(tree, index)| {
                let arena = match tree {
                    Tree::Global => &state.files,
                    Tree::Container(id) => &container(id)?.files,
                };
                let node = arena
                    .get(index)
                    .ok_or_else(|| format!("file {index} of {tree:?} is not in the state"))?;
                Ok(FileChange {
                    tree,
                    index,
                    node: Cow::Borrowed(node),
                })
            })
            .collect::<Result<_, String>>()?;
        let applets = changes
            .applet_storage
            .iter()
            .map(|(id, aid)| {
                let c = container(*id)?;
                let instance =
                    c.applets.iter().find(|a| a.aid == *aid).ok_or_else(|| {
                        format!("applet {} of {id} is not in the state", hexfmt(aid))
                    })?;
                Ok(StorageChange {
                    container: Cow::Borrowed(&c.isdp_aid),
                    instance: Cow::Borrowed(&instance.aid),
                    storage: Cow::Borrowed(&instance.storage),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Entry {
            generation: id.generation,
            snapshot: id.crc32,
            seq,
            card: changes.global.then(|| CardCore::of(state)),
            containers,
            files,
            notifications: changes
                .notifications
                .then_some(Cow::Borrowed(&state.notifications)),
            applets,
        })
    }

    pub fn applies_to(&self, id: SnapshotId) -> bool {
        self.generation == id.generation && self.snapshot == id.crc32
    }

    /// What the entry replaces, for `inspect`: `card, container A000.., global#5 (5005)`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.card.is_some() {
            parts.push("card".to_string());
        }
        if self.notifications.is_some() {
            parts.push("notifications".to_string());
        }
        for c in &self.containers {
            parts.push(format!(
                "container {}",
                apdu_specs::hexfmt::upper(&c.isdp_aid)
            ));
        }
        for f in &self.files {
            let tree = match f.tree {
                Tree::Global => "global".to_string(),
                Tree::Container(id) => id.to_string(),
            };
            parts.push(format!("file {tree}#{} ({:04X})", f.index, f.node.fid));
        }
        for a in &self.applets {
            parts.push(format!("applet storage {}", hexfmt(&a.instance)));
        }
        parts.join(", ")
    }

    /// Replace in `state` what the entry holds; an error names what the state lacks.
    pub fn apply(self, state: &mut CardState) -> Result<(), String> {
        if let Some(core) = self.card {
            core.apply(state);
        }
        if let Some(n) = self.notifications {
            state.notifications = n.into_owned();
        }
        for core in self.containers {
            let id = ContainerId::new(&core.isdp_aid).ok_or("a container AID of a bad length")?;
            let c = state
                .container_mut(id)
                .ok_or_else(|| format!("it names container {id}, which the state does not have"))?;
            core.apply(c);
        }
        for f in self.files {
            let arena = match f.tree {
                Tree::Global => &mut state.files,
                Tree::Container(id) => {
                    &mut state
                        .container_mut(id)
                        .ok_or_else(|| {
                            format!("it names container {id}, which the state does not have")
                        })?
                        .files
                }
            };
            let len = arena.len();
            let slot = arena.get_mut(f.index).ok_or_else(|| {
                format!(
                    "it names file {} of a tree of {len} files ({:?})",
                    f.index, f.tree
                )
            })?;
            *slot = f.node.into_owned();
        }
        for a in self.applets {
            let id = ContainerId::new(&a.container).ok_or("a container AID of a bad length")?;
            let c = state
                .container_mut(id)
                .ok_or_else(|| format!("it names container {id}, which the state does not have"))?;
            let instance = c
                .applets
                .iter_mut()
                .find(|i| *i.aid == *a.instance)
                .ok_or_else(|| {
                    format!(
                        "it names applet {} of {id}, which the state does not have",
                        hexfmt(&a.instance)
                    )
                })?;
            instance.storage = a.storage.into_owned();
        }
        Ok(())
    }
}

/// Write the frame of `entry` into `buf` (cleared first).
pub(crate) fn frame(buf: &mut Vec<u8>, entry: &Entry) {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER]);
    // Serializing plain data with string keys into memory cannot fail.
    let _ = serde_json::to_writer(&mut *buf, entry);
    buf.push(b'\n');
    let len = (buf.len() - HEADER) as u32;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&(!len).to_le_bytes());
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// A complete, checked frame.
pub(crate) struct Frame<'b> {
    pub offset: u64,
    pub payload: &'b [u8],
}

impl Frame<'_> {
    pub fn end(&self) -> u64 {
        self.offset + (HEADER + self.payload.len()) as u64
    }
}

/// Bytes after the last complete frame that were never a commit: an append cut short (a
/// kill or power loss during the write), or zeros a file system left after a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    pub offset: u64,
    pub bytes: u64,
    pub reason: &'static str,
}

/// A frame that is damaged where no write could have been cut: not a tail.
pub(crate) struct Damage {
    pub offset: u64,
    pub reason: String,
}

/// How the frames of a journal end.
pub(crate) enum End {
    Clean,
    Torn(TornTail),
    Damaged(Damage),
}

/// The checked frame at the start of `bytes`, if there is one.
fn frame_at(bytes: &[u8]) -> Option<&[u8]> {
    let word = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    let (len, check, crc) = (word(0)?, word(4)?, word(8)?);
    if len != !check {
        return None;
    }
    let payload = bytes.get(HEADER..HEADER.checked_add(len as usize)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// The frames of a journal, in order, and how they end. A frame that does not check is a
/// torn tail when no complete frame follows it anywhere (every acknowledged append is one):
/// an append cut short by a kill, or what a power loss left of it (a prefix, zeros). With a
/// complete frame after it, it is damage.
pub(crate) fn frames(bytes: &[u8]) -> (Vec<Frame<'_>>, End) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if let Some(payload) = frame_at(rest) {
            out.push(Frame {
                offset: at as u64,
                payload,
            });
            at += HEADER + payload.len();
            continue;
        }
        let offset = at as u64;
        if let Some(next) = (1..rest.len()).find(|i| frame_at(&rest[*i..]).is_some()) {
            return (
                out,
                End::Damaged(Damage {
                    offset,
                    reason: format!(
                        "an entry that does not check (length or checksum), with an entry after it at byte {}",
                        at + next
                    ),
                }),
            );
        }
        let reason = if rest.iter().all(|b| *b == 0) {
            "zeros after the last entry"
        } else if rest.len() < HEADER {
            "an entry header cut short"
        } else if rest[..4]
            != (!u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]])).to_le_bytes()
        {
            "an entry header cut short or damaged"
        } else if rest.len()
            < HEADER + u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize
        {
            "an entry cut short"
        } else {
            "a last entry whose checksum fails"
        };
        let tail = TornTail {
            offset,
            bytes: rest.len() as u64,
            reason,
        };
        return (out, End::Torn(tail));
    }
    (out, End::Clean)
}

/// Parse a checked frame's payload.
pub(crate) fn parse(frame: &Frame) -> Result<Entry<'static>, Damage> {
    serde_json::from_slice(frame.payload).map_err(|e| Damage {
        offset: frame.offset,
        reason: format!("an entry that does not parse ({e})"),
    })
}

mod cow_hex {
    use std::borrow::Cow;

    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        super::hex_bytes::serialize(b, s)
    }

    pub fn deserialize<'de, 'a, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Cow<'a, [u8]>, D::Error> {
        super::hex_bytes::deserialize(d).map(Cow::Owned)
    }
}

mod crc_hex {
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(crc: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{crc:08X}"))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// A tree as `global` or its container's ISD-P AID in hex.
mod tree_name {
    use crate::state::ContainerId;
    use crate::vm::Tree;
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(t: &Tree, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Tree::Global => s.serialize_str("global"),
            Tree::Container(id) => s.serialize_str(&apdu_specs::hexfmt::upper(id.aid())),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        let text = String::deserialize(d)?;
        if text == "global" {
            return Ok(Tree::Global);
        }
        let aid = apdu_specs::hexfmt::parse(&text).map_err(serde::de::Error::custom)?;
        ContainerId::new(&aid)
            .map(Tree::Container)
            .ok_or_else(|| serde::de::Error::custom("a container AID must be 5 to 16 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;

    /// The cores hold every field of the state but the file arenas and the containers.
    #[test]
    fn cores_hold_everything_but_the_arenas() {
        let s = profile::build(profile::DEFAULT_PROFILE).unwrap();
        let mut whole = serde_json::to_value(&s).unwrap();
        let obj = whole.as_object_mut().unwrap();
        obj.remove("files");
        obj.remove("containers");
        // Fixed at personalization, like atr_protocols: no entry carries it.
        obj.remove("euicc");
        // An entry's own part, not the card core's.
        obj.remove("notifications");
        let core = serde_json::to_value(CardCore::of(&s)).unwrap();
        assert_eq!(core, whole);
        let c = &s.containers()[0];
        let mut whole = serde_json::to_value(c).unwrap();
        whole.as_object_mut().unwrap().remove("files");
        // Fixed at personalization: no entry carries it.
        whole.as_object_mut().unwrap().remove("notify");
        assert_eq!(serde_json::to_value(ContainerCore::of(c)).unwrap(), whole);
    }

    proptest::proptest! {
        /// Whatever the bytes, finding the frames never panics, the frames lie within the
        /// bytes in order, and a tail or damage starts where the last frame ends.
        #[test]
        fn any_bytes_split_into_frames_and_an_ending(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            cut in 0usize..400,
        ) {
            let mut log = Vec::new();
            let s = profile::build(profile::DEFAULT_PROFILE).unwrap();
            let id = SnapshotId { generation: 1, crc32: 7 };
            frame(&mut log, &Entry::new(&s, &Changes { global: true, ..Changes::default() }, id, 1).unwrap());
            log.truncate(cut.min(log.len()));
            log.extend(&bytes);
            let (f, end) = frames(&log);
            let mut at = 0;
            for fr in &f {
                proptest::prop_assert_eq!(fr.offset, at);
                at = fr.end();
                let _ = parse(fr);
            }
            match end {
                End::Clean => proptest::prop_assert_eq!(at, log.len() as u64),
                End::Torn(t) => proptest::prop_assert_eq!((t.offset, t.offset + t.bytes), (at, log.len() as u64)),
                End::Damaged(d) => proptest::prop_assert_eq!(d.offset, at),
            }
        }
    }

    #[test]
    fn a_damaged_length_is_not_a_torn_tail() {
        let s = profile::build(profile::DEFAULT_PROFILE).unwrap();
        let id = SnapshotId {
            generation: 1,
            crc32: 7,
        };
        let changes = Changes {
            global: true,
            ..Changes::default()
        };
        let mut buf = Vec::new();
        frame(&mut buf, &Entry::new(&s, &changes, id, 1).unwrap());
        let twice = [buf.as_slice(), &buf].concat();
        let (f, end) = frames(&twice);
        assert!(f.len() == 2 && matches!(end, End::Clean));
        let mut bad = twice.clone();
        bad[1] ^= 0x40;
        let (f, end) = frames(&bad);
        assert!(f.is_empty() && matches!(end, End::Damaged(Damage { offset: 0, .. })));
        // The same damage in the last entry: a tail.
        let mut bad = twice.clone();
        bad[buf.len() + 1] ^= 0x40;
        let (f, end) = frames(&bad);
        assert!(f.len() == 1 && matches!(end, End::Torn(t) if t.offset == buf.len() as u64));
    }
}
