use super::policy::{enter_admin, Function};
use super::*;
use crate::profile;
use crate::state::AppletInstance;
use crate::store::MemoryStore;

fn card_with_second_active() -> CardState {
    let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
    assert!(s.containers().len() >= 2);
    for c in s.containers_mut().iter_mut() {
        c.enabled = false;
    }
    s.containers_mut()[1].enabled = true;
    s
}

#[test]
fn runtime_reaches_only_the_enabled_container_admin_reaches_all() {
    let mut s = card_with_second_active();
    let (a, b) = (s.containers()[0].id(), s.containers()[1].id());
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    assert_eq!(
        vm.tree(Tree::Container(a)).err(),
        Some(Status::FileNotFound)
    );
    assert!(vm.tree(Tree::Container(b)).is_ok());
    assert!(vm.pins(Tree::Container(a)).is_err());
    assert_eq!(vm.auth_mut(a).err(), Some(Status::FileNotFound));
    assert_eq!(
        vm.file_mut(Tree::Container(a), 0).err(),
        Some(Status::FileNotFound)
    );
    assert_eq!(
        vm.visible_trees().collect::<Vec<_>>(),
        vec![Tree::Global, Tree::Container(b)]
    );
    {
        let admin = enter_admin(&mut vm, Function::Es10, None).unwrap();
        assert!(admin.container_any(a).is_ok());
        assert_eq!(admin.containers().len(), 2);
        let unknown = ContainerId::new(&[0xA0, 0, 0, 0, 0x99]).unwrap();
        assert_eq!(
            admin.container_any(unknown).err(),
            Some(Status::ReferencedDataNotFound)
        );
    }
    // The scope ended with the guard: runtime rules again.
    assert!(vm.tree(Tree::Container(a)).is_err());
}

#[test]
fn global_platform_management_needs_a_secure_channel() {
    let mut s = card_with_second_active();
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    for f in [Function::GetStatus, Function::Personalize, Function::PutKey] {
        assert!(enter_admin(&mut vm, f, None).is_err(), "{f:?}");
        assert!(enter_admin(&mut vm, f, Some(SecurityLevel::C_MAC)).is_ok());
    }
}

#[test]
fn a_trust_anchor_needs_c_mac_c_dec_and_no_public_key_set() {
    let mut s = card_with_second_active();
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    let f = Function::InstallTrustAnchor;
    let denied = |vm: &mut Vm, level| enter_admin(vm, f, level).err();
    // The fresh card's test keys: no channel 6982, and in any channel 6985.
    assert_eq!(denied(&mut vm, None), Some(policy::Denied::SecurityStatus));
    assert_eq!(
        denied(&mut vm, Some(SecurityLevel::FULL)),
        Some(policy::Denied::TestKeys)
    );
    assert_eq!(
        policy::Denied::TestKeys.status(),
        Status::ConditionsNotSatisfied
    );
    // Every set but one secret: still refused.
    let secret = |k: &mut KeySet, b: u8| {
        k.enc = vec![b; 16];
        k.mac = vec![b + 1; 16];
        k.dek = vec![b + 2; 16];
    };
    {
        let mut admin = enter_admin(&mut vm, Function::PutKey, Some(SecurityLevel::C_MAC)).unwrap();
        secret(&mut admin.key_sets_mut()[0], 0x21);
    }
    assert_eq!(
        denied(&mut vm, Some(SecurityLevel::FULL)),
        Some(policy::Denied::TestKeys)
    );
    {
        let mut admin = enter_admin(&mut vm, Function::PutKey, Some(SecurityLevel::C_MAC)).unwrap();
        secret(&mut admin.key_sets_mut()[1], 0x31);
    }
    // All secret: the level decides (C-MAC and C-DECRYPTION at least).
    for level in SecurityLevel::ALL {
        let ok = level.c_mac() && level.c_dec();
        assert_eq!(
            denied(&mut vm, Some(level)),
            (!ok).then_some(policy::Denied::SecurityStatus),
            "{level}"
        );
    }
}

#[test]
fn a_switch_leaves_the_old_container_and_deleting_needs_it_disabled() {
    let mut s = card_with_second_active();
    let (a, b) = (s.containers()[0].id(), s.containers()[1].id());
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    {
        let mut admin = enter_admin(&mut vm, Function::Es10, None).unwrap();
        assert_eq!(admin.delete(b), Err(Status::ConditionsNotSatisfied));
        admin.switch(Some(a)).unwrap();
        admin.delete(b).unwrap();
    }
    let (committed, outcome) = vm.finish();
    committed.unwrap();
    assert_eq!(outcome.left, vec![b, b]);
    assert_eq!(s.enabled_id(), Some(a));
    assert_eq!(s.containers().len(), 1);
}

use secure_channel::SecurityLevel;

/// An applet instance in container `id` of `s`, with 8 bytes of storage.
fn with_applet(s: &mut CardState, at: usize) -> (ContainerId, Vec<u8>) {
    let aid = vec![0xA0, 0, 0, 0, 0xF1, 1];
    let c = &mut s.containers_mut()[at];
    c.applets.push(AppletInstance {
        aid: aid.clone(),
        load_file: vec![0xA0, 0, 0, 0, 0xF1],
        privileges: vec![0],
        storage: vec![0; 8],
        key: vec![1; 32],
    });
    (c.id(), aid)
}

#[test]
fn an_applet_lent_the_state_of_a_disabled_container_reaches_its_storage_never_its_files() {
    let mut s = card_with_second_active();
    let (a, aid) = with_applet(&mut s, 0);
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    // Runtime mode does not lend a disabled container's instance at all.
    assert_eq!(
        vm.lend_to_applet(a, &aid, &[]).err(),
        Some(Status::FileNotFound)
    );
    // An INSTALL into it (admin mode) runs with its storage, not its files.
    let mut admin =
        enter_admin(&mut vm, Function::ManageApplets, Some(SecurityLevel::C_MAC)).unwrap();
    let mut lent = admin.lend_for_install(a, &aid).unwrap();
    assert_eq!(
        lent.file_read(0x6F01, 0, 4).err(),
        Some(Status::FileNotFound)
    );
    assert_eq!(
        lent.file_write(0x6F01, 0, b"x").err(),
        Some(Status::FileNotFound)
    );
    assert_eq!(
        lent.record_read(0x6F01, 1).err(),
        Some(Status::FileNotFound)
    );
    lent.storage_write(2, &[7, 7]).unwrap();
    assert_eq!(
        lent.storage_write(7, &[7, 7]).err(),
        Some(Status::NotEnoughMemory)
    );
    admin.take_back(lent, applet::CallEnd::Keep);
    let (committed, _) = vm.finish();
    committed.unwrap();
    assert_eq!(
        store.load().unwrap().containers()[0].applets[0].storage,
        [0, 0, 7, 7, 0, 0, 0, 0]
    );
}

#[test]
fn an_undone_call_leaves_storage_and_files_as_they_were_and_records_nothing() {
    let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let (a, aid) = with_applet(&mut s, 0);
    let before = s.clone();
    let mut store = MemoryStore::new(s.clone());
    let mut vm = Vm::runtime(&mut s, &mut store);
    let mut lent = vm
        .lend_to_applet(a, &aid, &[(Tree::Container(a), 0x81)])
        .unwrap();
    lent.storage_write(0, &[9; 8]).unwrap();
    lent.file_write(0x6F01, 0, b"XX").unwrap();
    assert_eq!(&lent.file_read(0x6F01, 0, 2).unwrap(), b"XX");
    vm.take_back(lent, applet::CallEnd::Undo);
    let (committed, _) = vm.finish();
    committed.unwrap();
    assert_eq!(s, before);
    assert_eq!(store.commits, 0);
}
