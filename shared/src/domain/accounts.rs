//! Shopper and operator accounts: registration, login, and the operator
//! check every admin request makes.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    domain::{
        WRITE_ATTEMPTS,
        auth::{IssuedToken, Role, Tokens, hash_password, verify_password},
        tickets::Solution,
    },
    error::{Error, invalid},
    ids,
    model::{Address, AddressFields, Admin, AdminStatus, Profile, Receiver, User},
    ports::{AccountStore, AddressBook, Page, PortError},
    validate,
};

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

fn check_profile(profile: &Profile) -> Result<(), Error> {
    validate::optional_length("phone", profile.phone.as_deref(), 20)?;
    validate::optional_length("email", profile.email.as_deref(), 50)?;
    validate::optional_length("nick_name", profile.nick_name.as_deref(), 50)?;
    validate::optional_length("name", profile.name.as_deref(), 50)
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// A solved sign-in challenge, asked once the account has seen more
    /// attempts lately than its ceiling (`CHALLENGE_REQUIRED`).
    #[serde(default)]
    pub solution: Option<Solution>,
}

/// `POST /admin/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminLogin {
    pub login_name: String,
    pub password: String,
    /// As [`Login::solution`].
    #[serde(default)]
    pub solution: Option<Solution>,
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
    validate::account_name("username", &form.username)?;
    validate::password(&form.password)?;
    let profile = Profile {
        phone: form.phone,
        email: form.email,
        nick_name: form.nick_name,
        name: form.name,
    };
    check_profile(&profile)?;
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
        Err(PortError::ConditionFailed) => Err(Error::Conflict(format!("username `{}` is taken", user.username))),
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
    validate::account_name("username", &form.username)?;
    validate::offered_password(&form.password)?;
    let user = authenticate(store.user_credentials(&form.username).await?, form.password).await?;
    Ok(tokens.issue_since(&user.username, Role::User, Some(user.created), now))
}

pub async fn admin_login(
    store: &impl AccountStore,
    tokens: &Tokens,
    form: AdminLogin,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    validate::account_name("login_name", &form.login_name)?;
    validate::offered_password(&form.password)?;
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
    validate::account_name("login_name", login_name)?;
    if store.admin_credentials(login_name).await?.is_some() {
        return Ok(false);
    }
    let admin = Admin {
        id: ids::fresh(),
        login_name: login_name.to_owned(),
        status: AdminStatus::Enabled,
    };
    match store
        .insert_admin(&admin, &hash_off_thread(password.to_owned()).await?)
        .await
    {
        Ok(()) => Ok(true),
        Err(PortError::ConditionFailed) => Ok(false),
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
    check_profile(&profile)?;
    match store.update_profile(username, &profile, now).await {
        Ok(user) => Ok(user),
        Err(PortError::ConditionFailed) => Err(Error::NotFound("account")),
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
    validate::account_name("login_name", &form.login_name)?;
    validate::password(&form.password)?;
    let admin = Admin {
        id: ids::fresh(),
        login_name: form.login_name,
        status: AdminStatus::Enabled,
    };
    match store.insert_admin(&admin, &hash_off_thread(form.password).await?).await {
        Ok(()) => Ok(admin),
        Err(PortError::ConditionFailed) => Err(Error::Conflict(format!("login name `{}` is taken", admin.login_name))),
        Err(error) => Err(error.into()),
    }
}

/// Every operator, a page at a time.
pub async fn admins(store: &impl AccountStore, limit: usize, cursor: Option<&str>) -> Result<Page<Admin>, Error> {
    Ok(store.admin_page(limit, cursor).await?)
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
        Err(PortError::ConditionFailed) => Err(Error::NotFound("admin")),
        Err(error) => Err(error.into()),
    }
}

/// A shopper keeps at most this many addresses.
pub const MAX_ADDRESSES: usize = 20;

fn check_address(fields: &AddressFields) -> Result<(), Error> {
    validate::length("contact", &fields.contact, 1..=50)?;
    validate::length("phone", &fields.phone, 1..=20)?;
    validate::length("address", &fields.address, 1..=200)?;
    validate::optional_length("provinceid", fields.provinceid.as_deref(), 20)?;
    validate::optional_length("cityid", fields.cityid.as_deref(), 20)?;
    validate::optional_length("areaid", fields.areaid.as_deref(), 20)?;
    validate::optional_length("alias", fields.alias.as_deref(), 50)?;
    validate::flag("is_default", &fields.is_default)
}

const DEFAULT: &str = "1";
const NOT_DEFAULT: &str = "0";

/// A change of an address book, planned from one reading of it.
struct BookChange<T> {
    put: Vec<Address>,
    delete: Option<String>,
    answer: T,
}

/// Plans a change from the book as read and writes it if the book is
/// still as read, reading it again when another change got in first: the
/// limit and the single default are decided on the book they apply to.
async fn change_book<T>(
    store: &impl AccountStore,
    username: &str,
    plan: impl Fn(&AddressBook) -> Result<BookChange<T>, Error>,
) -> Result<T, Error> {
    for _ in 0..WRITE_ATTEMPTS {
        let book = store.address_book(username).await?;
        let change = plan(&book)?;
        match store
            .change_address_book(username, book.version, &change.put, change.delete.as_deref())
            .await
        {
            Ok(()) => return Ok(change.answer),
            Err(PortError::ConditionFailed | PortError::TransactionConflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Conflict("the address book kept changing; retry".into()))
}

fn with_default(address: &Address, is_default: &str) -> Address {
    let mut changed = address.clone();
    changed.fields.is_default = is_default.into();
    changed
}

/// Saves a new address (`id` None) or replaces one. Exactly one address is
/// the default whenever there is any: the first becomes it, a new default
/// takes the mark from the old one.
pub async fn save_address(
    store: &impl AccountStore,
    username: &str,
    id: Option<&str>,
    fields: AddressFields,
) -> Result<Address, Error> {
    check_address(&fields)?;
    let new_id = ids::fresh();
    change_book(store, username, |book| {
        let existing = &book.addresses;
        let id = match id {
            Some(id) if existing.iter().any(|a| a.id == id) => id.to_owned(),
            Some(_) => return Err(Error::NotFound("address")),
            None if existing.len() >= MAX_ADDRESSES => {
                return Err(invalid(format!("at most {MAX_ADDRESSES} addresses per account")));
            }
            None => new_id.clone(),
        };
        let others: Vec<&Address> = existing.iter().filter(|a| a.id != id).collect();
        let mut address = Address {
            id,
            username: username.to_owned(),
            fields: fields.clone(),
        };
        if others.iter().all(|a| a.fields.is_default != DEFAULT) {
            address.fields.is_default = DEFAULT.into();
        }
        let mut put = vec![address.clone()];
        if address.fields.is_default == DEFAULT {
            put.extend(
                others
                    .into_iter()
                    .filter(|a| a.fields.is_default == DEFAULT)
                    .map(|a| with_default(a, NOT_DEFAULT)),
            );
        }
        Ok(BookChange {
            put,
            delete: None,
            answer: address,
        })
    })
    .await
}

/// Every address of the shopper (at most [`MAX_ADDRESSES`]), the default first.
pub async fn addresses(store: &impl AccountStore, username: &str) -> Result<Vec<Address>, Error> {
    let mut addresses = store.address_book(username).await?.addresses;
    addresses.sort_by_key(|a| a.fields.is_default != DEFAULT);
    Ok(addresses)
}

pub async fn delete_address(store: &impl AccountStore, username: &str, id: &str) -> Result<(), Error> {
    change_book(store, username, |book| {
        let gone = book
            .addresses
            .iter()
            .find(|a| a.id == id)
            .ok_or(Error::NotFound("address"))?;
        let promoted = book
            .addresses
            .iter()
            .find(|a| a.id != id)
            .filter(|_| gone.fields.is_default == DEFAULT)
            .map(|next| with_default(next, DEFAULT));
        Ok(BookChange {
            put: promoted.into_iter().collect(),
            delete: Some(id.to_owned()),
            answer: (),
        })
    })
    .await
}

/// Where a paid order ships to: the named address, else the default one,
/// else nowhere yet.
pub async fn receiver(
    store: &impl AccountStore,
    username: &str,
    address_id: Option<&str>,
) -> Result<Option<Receiver>, Error> {
    let addresses = store.address_book(username).await?.addresses;
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
