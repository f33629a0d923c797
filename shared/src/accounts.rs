//! Shopper and operator accounts: registration, login, and the operator
//! check every admin request makes.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use ulid::Ulid;

use crate::{
    Error,
    auth::{IssuedToken, Role, Tokens, hash_password, verify_password},
    error::invalid,
    model::{Address, AddressFields, Admin, AdminStatus, Receiver, User},
    store::{Page, StoreError},
};

pub trait AccountStore: Sync {
    fn update_profile(
        &self,
        username: &str,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<User, StoreError>> + Send;
    fn admin_page(&self, limit: usize, cursor: Option<&str>)
    -> impl Future<Output = Result<Page<Admin>, Error>> + Send;
    fn set_admin_status(
        &self,
        login_name: &str,
        status: AdminStatus,
    ) -> impl Future<Output = Result<Admin, StoreError>> + Send;
    fn addresses_of(&self, username: &str) -> impl Future<Output = Result<Vec<Address>, StoreError>> + Send;
    fn put_address(&self, address: &Address) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete_address(&self, username: &str, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Fails with `ConditionFailed` if the username is taken.
    fn insert_user(&self, user: &User, password_hash: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn user_credentials(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<(User, String)>, StoreError>> + Send;
    /// Fails with `ConditionFailed` if the login name is taken.
    fn insert_admin(&self, admin: &Admin, password_hash: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn admin_credentials(
        &self,
        login_name: &str,
    ) -> impl Future<Output = Result<Option<(Admin, String)>, StoreError>> + Send;
}

/// `POST /auth/register`: the `tb_user` fields a shopper chooses. The
/// profile fields are spelled out rather than a flattened [`Profile`]:
/// through `#[serde(flatten)]` an unknown field would be swallowed instead
/// of refused.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nick_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The `tb_user` fields a shopper edits (`PUT /me`); what is left out is
/// cleared.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nick_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Profile {
    fn validate(&self) -> Result<(), Error> {
        check_optional("phone", &self.phone, 20)?;
        check_optional("email", &self.email, 50)?;
        check_optional("nick_name", &self.nick_name, 50)?;
        check_optional("name", &self.name, 50)
    }
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// `POST /admin/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminLogin {
    pub login_name: String,
    pub password: String,
}

/// Names are used in Redis keys and URLs: keep them to a safe alphabet.
pub fn check_name(field: &str, value: &str) -> Result<(), Error> {
    let ok_len = (3..=50).contains(&value.chars().count());
    let ok_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{field}` must be 3-50 characters of letters, digits, `_`, `.` or `-`"
        )))
    }
}

fn check_password(password: &str) -> Result<(), Error> {
    if (8..=128).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(invalid("`password` must be 8-128 characters"))
    }
}

fn check_optional(field: &str, value: &Option<String>, max: usize) -> Result<(), Error> {
    match value {
        Some(v) if v.chars().count() > max => Err(invalid(format!("`{field}` must be at most {max} characters"))),
        _ => Ok(()),
    }
}

/// Argon2 is deliberately slow: keep it off the async workers.
async fn hash_off_thread(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::unavailable)
}

async fn verify_off_thread(password: String, hash: Option<String>) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(Error::unavailable)
}

pub async fn register(store: &impl AccountStore, form: Registration, now: DateTime<Utc>) -> Result<User, Error> {
    check_name("username", &form.username)?;
    check_password(&form.password)?;
    let profile = Profile {
        phone: form.phone,
        email: form.email,
        nick_name: form.nick_name,
        name: form.name,
    };
    profile.validate()?;
    let user = User {
        username: form.username,
        phone: profile.phone,
        email: profile.email,
        nick_name: profile.nick_name,
        name: profile.name,
        created: now,
        updated: now,
    };
    let hash = hash_off_thread(form.password).await?;
    match store.insert_user(&user, &hash).await {
        Ok(()) => Ok(user),
        Err(StoreError::ConditionFailed) => Err(Error::Conflict(format!("username `{}` is taken", user.username))),
        Err(error) => Err(error.into()),
    }
}

const BAD_CREDENTIALS: Error = Error::Unauthorized("wrong username or password");

/// Checks a password against what the store holds for one account, with
/// the same work whether or not the account exists.
async fn authenticate<T>(stored: Option<(T, String)>, password: String) -> Result<T, Error> {
    let (record, hash) = stored.unzip();
    if !verify_off_thread(password, hash).await? {
        return Err(BAD_CREDENTIALS);
    }
    record.ok_or(BAD_CREDENTIALS)
}

pub async fn login(
    store: &impl AccountStore,
    tokens: &Tokens,
    form: Login,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let user = authenticate(store.user_credentials(&form.username).await?, form.password).await?;
    Ok(tokens.issue(&user.username, Role::User, now))
}

pub async fn admin_login(
    store: &impl AccountStore,
    tokens: &Tokens,
    form: AdminLogin,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let admin = authenticate(store.admin_credentials(&form.login_name).await?, form.password).await?;
    if admin.status == AdminStatus::Disabled {
        return Err(Error::Forbidden("this operator account is disabled"));
    }
    Ok(tokens.issue(&admin.login_name, Role::Admin, now))
}

/// The operator behind an admin token, checked on every request so that
/// disabling an account takes effect at once.
pub async fn active_admin(store: &impl AccountStore, login_name: &str) -> Result<Admin, Error> {
    match store.admin_credentials(login_name).await? {
        Some((admin, _)) if admin.status == AdminStatus::Enabled => Ok(admin),
        Some(_) => Err(Error::Forbidden("this operator account is disabled")),
        None => Err(Error::Unauthorized("the token's operator no longer exists")),
    }
}

/// Creates an operator unless one with that login name exists; returns
/// whether it did. Used to seed the first admin.
pub async fn ensure_admin(store: &impl AccountStore, login_name: &str, password: &str) -> Result<bool, Error> {
    check_name("login_name", login_name)?;
    if store.admin_credentials(login_name).await?.is_some() {
        return Ok(false);
    }
    let admin = Admin {
        id: Ulid::generate().to_string(),
        login_name: login_name.to_owned(),
        status: AdminStatus::Enabled,
    };
    match store
        .insert_admin(&admin, &hash_off_thread(password.to_owned()).await?)
        .await
    {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

pub async fn profile(store: &impl AccountStore, username: &str) -> Result<User, Error> {
    let (user, _) = store
        .user_credentials(username)
        .await?
        .ok_or(Error::NotFound("account"))?;
    Ok(user)
}

pub async fn update_profile(
    store: &impl AccountStore,
    username: &str,
    profile: Profile,
    now: DateTime<Utc>,
) -> Result<User, Error> {
    profile.validate()?;
    match store.update_profile(username, &profile, now).await {
        Ok(user) => Ok(user),
        Err(StoreError::ConditionFailed) => Err(Error::NotFound("account")),
        Err(error) => Err(error.into()),
    }
}

/// `POST /admin/admins`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewAdmin {
    pub login_name: String,
    pub password: String,
}

pub async fn add_admin(store: &impl AccountStore, form: NewAdmin) -> Result<Admin, Error> {
    check_name("login_name", &form.login_name)?;
    check_password(&form.password)?;
    let admin = Admin {
        id: Ulid::generate().to_string(),
        login_name: form.login_name,
        status: AdminStatus::Enabled,
    };
    match store.insert_admin(&admin, &hash_off_thread(form.password).await?).await {
        Ok(()) => Ok(admin),
        Err(StoreError::ConditionFailed) => Err(Error::Conflict(format!("login name `{}` is taken", admin.login_name))),
        Err(error) => Err(error.into()),
    }
}

/// `PUT /admin/admins/{login_name}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminChange {
    pub status: AdminStatus,
}

/// Enables or disables an operator; disabling takes effect at their next
/// request. Nobody may disable themselves, so the last operator cannot lock
/// everyone out by mistake.
pub async fn change_admin(
    store: &impl AccountStore,
    actor: &str,
    login_name: &str,
    change: AdminChange,
) -> Result<Admin, Error> {
    if actor == login_name && change.status == AdminStatus::Disabled {
        return Err(Error::Conflict("operators cannot disable themselves".into()));
    }
    match store.set_admin_status(login_name, change.status).await {
        Ok(admin) => Ok(admin),
        Err(StoreError::ConditionFailed) => Err(Error::NotFound("admin")),
        Err(error) => Err(error.into()),
    }
}

/// A shopper keeps at most this many addresses.
pub const MAX_ADDRESSES: usize = 20;

fn check_address(fields: &AddressFields) -> Result<(), Error> {
    for (field, value, max) in [
        ("contact", &fields.contact, 50),
        ("phone", &fields.phone, 20),
        ("address", &fields.address, 200),
    ] {
        let len = value.trim().chars().count();
        if !(1..=max).contains(&len) {
            return Err(invalid(format!("`{field}` must be 1-{max} characters")));
        }
    }
    check_optional("provinceid", &fields.provinceid, 20)?;
    check_optional("cityid", &fields.cityid, 20)?;
    check_optional("areaid", &fields.areaid, 20)?;
    check_optional("alias", &fields.alias, 50)?;
    match fields.is_default.as_str() {
        "0" | "1" => Ok(()),
        _ => Err(invalid("`is_default` must be \"0\" or \"1\"")),
    }
}

const DEFAULT: &str = "1";
const NOT_DEFAULT: &str = "0";

/// Saves a new address (`id` None) or replaces one. Exactly one address is
/// the default whenever there is any: the first becomes it, a new default
/// takes the mark from the old one.
pub async fn save_address(
    store: &impl AccountStore,
    username: &str,
    id: Option<&str>,
    mut fields: AddressFields,
) -> Result<Address, Error> {
    check_address(&fields)?;
    let existing = store.addresses_of(username).await?;
    let id = match id {
        Some(id) if existing.iter().any(|a| a.id == id) => id.to_owned(),
        Some(_) => return Err(Error::NotFound("address")),
        None if existing.len() >= MAX_ADDRESSES => {
            return Err(invalid(format!("at most {MAX_ADDRESSES} addresses per account")));
        }
        None => Ulid::generate().to_string(),
    };
    let others: Vec<&Address> = existing.iter().filter(|a| a.id != id).collect();
    if others.iter().all(|a| a.fields.is_default != DEFAULT) {
        fields.is_default = DEFAULT.into();
    }
    let address = Address {
        id,
        username: username.to_owned(),
        fields,
    };
    store.put_address(&address).await?;
    if address.fields.is_default == DEFAULT {
        for other in others.into_iter().filter(|a| a.fields.is_default == DEFAULT) {
            let mut demoted = other.clone();
            demoted.fields.is_default = NOT_DEFAULT.into();
            store.put_address(&demoted).await?;
        }
    }
    Ok(address)
}

pub async fn delete_address(store: &impl AccountStore, username: &str, id: &str) -> Result<(), Error> {
    let existing = store.addresses_of(username).await?;
    let gone = existing.iter().find(|a| a.id == id).ok_or(Error::NotFound("address"))?;
    store.delete_address(username, id).await?;
    if gone.fields.is_default == DEFAULT
        && let Some(next) = existing.iter().find(|a| a.id != id)
    {
        let mut promoted = next.clone();
        promoted.fields.is_default = DEFAULT.into();
        store.put_address(&promoted).await?;
    }
    Ok(())
}

/// Where a paid order ships to: the named address, else the default one,
/// else nowhere yet.
pub async fn receiver(
    store: &impl AccountStore,
    username: &str,
    address_id: Option<&str>,
) -> Result<Option<Receiver>, Error> {
    let addresses = store.addresses_of(username).await?;
    let chosen = match address_id {
        Some(id) => Some(
            addresses
                .iter()
                .find(|a| a.id == id)
                .ok_or(Error::NotFound("address"))?,
        ),
        None => addresses.iter().find(|a| a.fields.is_default == DEFAULT),
    };
    Ok(chosen.map(|a| {
        let f = &a.fields;
        let region = [&f.provinceid, &f.cityid, &f.areaid]
            .into_iter()
            .flatten()
            .map(String::as_str);
        Receiver {
            contact: f.contact.clone(),
            mobile: f.phone.clone(),
            address: region.chain([f.address.as_str()]).collect::<Vec<_>>().join(" "),
        }
    }))
}
