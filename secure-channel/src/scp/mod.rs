//! GlobalPlatform secure channels SCP02 and SCP03: one session state machine ([`core`]), the card's and the host's end of it ([`card`], [`host`]), and what each protocol adds ([`scp02`], [`scp03`]).

/// An enum over one end's session of either protocol, with the protocol number, the session
/// behind it as the end's trait object, and a conversion from each protocol's session.
macro_rules! either_protocol {
    ($(#[$doc:meta])* $name:ident, $session:ident, $end:ident) => {
        $(#[$doc])*
        pub enum $name {
            Scp02($session<Scp02>),
            Scp03($session<Scp03>),
        }

        impl $name {
            /// The protocol number: 2 or 3.
            pub fn scp(&self) -> u8 {
                match self {
                    $name::Scp02(_) => 2,
                    $name::Scp03(_) => 3,
                }
            }

            /// The session behind the protocol.
            pub fn session(&self) -> &dyn $end {
                match self {
                    $name::Scp02(s) => s,
                    $name::Scp03(s) => s,
                }
            }

            /// The session behind the protocol, to use it.
            pub fn session_mut(&mut self) -> &mut dyn $end {
                match self {
                    $name::Scp02(s) => s,
                    $name::Scp03(s) => s,
                }
            }
        }

        impl From<$session<Scp02>> for $name {
            fn from(s: $session<Scp02>) -> $name {
                $name::Scp02(s)
            }
        }

        impl From<$session<Scp03>> for $name {
            fn from(s: $session<Scp03>) -> $name {
                $name::Scp03(s)
            }
        }
    };
}

pub mod card;
pub mod core;
pub mod host;
pub mod scp02;
pub mod scp03;

pub use self::core::{MacBlock, Protocol};
pub use card::{AnySession, CardSecureChannel, CardSession};
pub use host::{AnyHostSession, HostHandshake, HostSecureChannel, HostSession};
