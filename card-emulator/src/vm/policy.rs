//! The card manager's policy: the one function that opens an admin scope, for ES10c and
//! GlobalPlatform alike.

use super::{Admin, Vm};
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
    /// §11.11): writes into a container's files and trust anchors.
    Personalize,
    /// PUT KEY (GPC §11.8): replaces or adds a GlobalPlatform key set.
    PutKey,
}

/// The policy refused admin mode for this function on this channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied;

/// Decide whether `function` may run in admin mode, and if so open the scope.
///
/// `secure` is the level of the authenticated GlobalPlatform secure channel the command
/// came through (unwrapped), `None` for a command in clear. GlobalPlatform management
/// always needs such a channel (GPC §10.2); ES10 functions need one only where the
/// profile says so (`policy.es10_requires_secure_channel`), since an eUICC serves its LPA
/// without one.
pub fn enter_admin<'v, 'a>(
    vm: &'v mut Vm<'a>,
    function: Function,
    secure: Option<SecurityLevel>,
) -> Result<Admin<'v, 'a>, Denied> {
    let needs_channel = match function {
        Function::Es10 => vm.policy().es10_requires_secure_channel,
        Function::GetStatus | Function::Personalize | Function::PutKey => true,
    };
    if needs_channel && secure.is_none() {
        return Err(Denied);
    }
    Ok(Admin { vm })
}
