//! The card manager's policy: the one function that opens an admin scope, for ES10c and
//! GlobalPlatform alike.

use super::{Admin, Vm};
use crate::state::KeySet;
use apdu_specs::Status;
use secure_channel::SecurityLevel;

/// A management function that needs admin mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// An ES10 function over STORE DATA (SGP.22 §5.7): list, enable, disable, delete,
    /// nickname containers, and the eUICC information that counts them.
    Es10,
    /// GET STATUS of the applications and security domains (GPC §11.4).
    GetStatus,
    /// INSTALL [for personalization] and the DGI STORE DATA that follow (GPC §11.5.2.3,
    /// §11.11): writes into a container's files.
    Personalize,
    /// A DGI STORE DATA that installs or replaces a trust anchor (DGI A001): the server key
    /// the container believes for a service. Whoever installs one makes the SE accept that
    /// server's R', so it needs more than [`Function::Personalize`]: command encryption and
    /// MACs on the channel, and no GlobalPlatform key set that the public knows (a terminal
    /// knows the test keys; a channel opened with them proves nothing).
    InstallTrustAnchor,
    /// PUT KEY (GPC §11.8): replaces or adds a GlobalPlatform key set.
    PutKey,
    /// INSTALL [for load], LOAD, INSTALL [for install], DELETE of loaded applets (GPC
    /// §11.5, §11.6, §11.2): code that runs in a container. It reaches nothing a terminal
    /// on the same channel could not (files keep their access conditions), so a channel
    /// is enough.
    ManageApplets,
}

/// Why the policy refused admin mode for this function on this channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No authenticated secure channel, or one below the level the function needs.
    SecurityStatus,
    /// A GlobalPlatform key set of the card is a publicly known test key set.
    TestKeys,
}

impl Denied {
    /// The status word a GlobalPlatform command answers: 6982 for the channel, 6985 while
    /// test keys remain (conditions of use: rotate the keys with PUT KEY first).
    pub fn status(self) -> Status {
        match self {
            Denied::SecurityStatus => Status::SecurityStatusNotSatisfied,
            Denied::TestKeys => Status::ConditionsNotSatisfied,
        }
    }
}

/// The least a channel must protect to carry a trust anchor: C-MAC and C-DECRYPTION.
pub const TRUST_ANCHOR_LEVEL: SecurityLevel = SecurityLevel::C_DEC_C_MAC;

/// Decide whether `function` may run in admin mode, and if so open the scope.
///
/// `secure` is the level of the authenticated GlobalPlatform secure channel the command
/// came through (unwrapped), `None` for a command in clear. GlobalPlatform management
/// always needs such a channel (GPC §10.2); ES10 functions need one only where the
/// profile says so (`policy.es10_requires_secure_channel`), since an eUICC serves its LPA
/// without one. Installing a trust anchor also needs C-MAC + C-DECRYPTION (6982 below) and
/// refuses while any key set is publicly known (6985), so a terminal that knows only the
/// public test keys can never choose the server the SE believes.
pub fn enter_admin<'v, 'a>(
    vm: &'v mut Vm<'a>,
    function: Function,
    secure: Option<SecurityLevel>,
) -> Result<Admin<'v, 'a>, Denied> {
    let needs_channel = match function {
        Function::Es10 => vm.policy().es10_requires_secure_channel,
        Function::GetStatus
        | Function::Personalize
        | Function::InstallTrustAnchor
        | Function::PutKey
        | Function::ManageApplets => true,
    };
    if needs_channel && secure.is_none() {
        return Err(Denied::SecurityStatus);
    }
    if function == Function::InstallTrustAnchor {
        let level = secure.unwrap_or_default();
        let required = TRUST_ANCHOR_LEVEL.bits();
        if level.bits() & required != required {
            return Err(Denied::SecurityStatus);
        }
        if vm.key_sets().iter().any(KeySet::is_publicly_known) {
            return Err(Denied::TestKeys);
        }
    }
    Ok(Admin { vm })
}
