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
    model::{Admin, AdminStatus, User},
    store::StoreError,
};

pub trait AccountStore: Sync {
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

/// `POST /auth/register`: the `tb_user` fields a shopper chooses.
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
    check_optional("phone", &form.phone, 20)?;
    check_optional("email", &form.email, 50)?;
    check_optional("nick_name", &form.nick_name, 50)?;
    check_optional("name", &form.name, 50)?;
    let user = User {
        username: form.username,
        phone: form.phone,
        email: form.email,
        nick_name: form.nick_name,
        name: form.name,
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

pub async fn login(
    store: &impl AccountStore,
    tokens: &Tokens,
    form: Login,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let stored = store.user_credentials(&form.username).await?;
    let (user, hash) = stored.unzip();
    if !verify_off_thread(form.password, hash).await? {
        return Err(BAD_CREDENTIALS);
    }
    let user = user.ok_or(BAD_CREDENTIALS)?;
    Ok(tokens.issue(&user.username, Role::User, now))
}

pub async fn admin_login(
    store: &impl AccountStore,
    tokens: &Tokens,
    form: AdminLogin,
    now: DateTime<Utc>,
) -> Result<IssuedToken, Error> {
    let stored = store.admin_credentials(&form.login_name).await?;
    let (admin, hash) = stored.unzip();
    if !verify_off_thread(form.password, hash).await? {
        return Err(BAD_CREDENTIALS);
    }
    let admin = admin.ok_or(BAD_CREDENTIALS)?;
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
