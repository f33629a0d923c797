//! [`AccountStore`] in memory.

use chrono::{DateTime, Utc};

use super::{MemoryLedger, Op, page};
use crate::{
    model::{Address, Admin, AdminStatus, Profile, User},
    ports::{AccountStore, AddressBook, Page, PortError, PortResult},
};

impl AccountStore for MemoryLedger {
    async fn insert_user(&self, user: &User, password_hash: &str) -> PortResult<()> {
        self.faults
            .run(Op::InsertUser, || {
                let mut state = self.state();
                if state.users.contains_key(&user.username) {
                    return Err(PortError::ConditionFailed);
                }
                state
                    .users
                    .insert(user.username.clone(), (user.clone(), password_hash.to_owned()));
                Ok(())
            })
            .await
    }

    async fn user_credentials(&self, username: &str) -> PortResult<Option<(User, String)>> {
        self.faults
            .run(Op::UserCredentials, || Ok(self.state().users.get(username).cloned()))
            .await
    }

    async fn update_profile(&self, username: &str, profile: &Profile, now: DateTime<Utc>) -> PortResult<User> {
        self.faults
            .run(Op::UpdateProfile, || {
                let mut state = self.state();
                let (user, _) = state.users.get_mut(username).ok_or(PortError::ConditionFailed)?;
                user.phone.clone_from(&profile.phone);
                user.email.clone_from(&profile.email);
                user.nick_name.clone_from(&profile.nick_name);
                user.name.clone_from(&profile.name);
                user.updated = now;
                Ok(user.clone())
            })
            .await
    }

    async fn insert_admin(&self, admin: &Admin, password_hash: &str) -> PortResult<()> {
        self.faults
            .run(Op::InsertAdmin, || {
                let mut state = self.state();
                if state.admins.contains_key(&admin.login_name) {
                    return Err(PortError::ConditionFailed);
                }
                state
                    .admins
                    .insert(admin.login_name.clone(), (admin.clone(), password_hash.to_owned()));
                Ok(())
            })
            .await
    }

    async fn admin_credentials(&self, login_name: &str) -> PortResult<Option<(Admin, String)>> {
        self.faults
            .run(Op::AdminCredentials, || {
                Ok(self.state().admins.get(login_name).cloned())
            })
            .await
    }

    async fn admin_page(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Admin>> {
        self.faults
            .run(Op::AdminPage, || {
                let mut admins: Vec<Admin> = self.state().admins.values().map(|(a, _)| a.clone()).collect();
                admins.sort_by(|a, b| a.login_name.cmp(&b.login_name));
                page(admins, limit, cursor)
            })
            .await
    }

    async fn set_admin_status(&self, login_name: &str, status: AdminStatus) -> PortResult<Admin> {
        self.faults
            .run(Op::SetAdminStatus, || {
                let mut state = self.state();
                let (admin, _) = state.admins.get_mut(login_name).ok_or(PortError::ConditionFailed)?;
                admin.status = status;
                Ok(admin.clone())
            })
            .await
    }

    async fn address_book(&self, username: &str) -> PortResult<AddressBook> {
        self.faults
            .run(Op::AddressBook, || {
                let state = self.state();
                Ok(AddressBook {
                    version: state.address_books.get(username).copied().unwrap_or(0),
                    addresses: state
                        .addresses
                        .values()
                        .filter(|a| a.username == username)
                        .cloned()
                        .collect(),
                })
            })
            .await
    }

    async fn change_address_book(
        &self,
        username: &str,
        version: u64,
        put: &[Address],
        delete: Option<&str>,
    ) -> PortResult<()> {
        self.faults
            .run(Op::ChangeAddressBook, || {
                let mut state = self.state();
                let current = state.address_books.entry(username.to_owned()).or_default();
                if *current != version {
                    return Err(PortError::ConditionFailed);
                }
                *current += 1;
                for address in put {
                    state
                        .addresses
                        .insert((username.to_owned(), address.id.clone()), address.clone());
                }
                if let Some(id) = delete {
                    state.addresses.remove(&(username.to_owned(), id.to_owned()));
                }
                Ok(())
            })
            .await
    }
}
