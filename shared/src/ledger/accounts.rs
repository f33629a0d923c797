//! [`AccountStore`] on DynamoDB: shoppers, operators, shipping addresses.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Dynamo, tables};
use crate::{
    domain::accounts::MAX_ADDRESSES,
    model::{Address, Admin, AdminStatus, Profile, User},
    ports::{AccountStore, AddressBook, Page, PortError, PortResult},
    ts,
};

/// A record stored with its password hash, which never leaves the adapter.
#[derive(Serialize, Deserialize)]
struct WithPassword<T> {
    #[serde(flatten)]
    record: T,
    password: String,
}

impl AccountStore for Dynamo {
    async fn insert_user(&self, user: &User, password_hash: &str) -> PortResult<()> {
        let item = WithPassword {
            record: user,
            password: password_hash.to_owned(),
        };
        self.put(tables::USERS, &item, true).await
    }

    async fn user_credentials(&self, username: &str) -> PortResult<Option<(User, String)>> {
        let item: Option<WithPassword<User>> = self.get(tables::USERS, username).await?;
        Ok(item.map(|i| (i.record, i.password)))
    }

    async fn insert_admin(&self, admin: &Admin, password_hash: &str) -> PortResult<()> {
        let item = WithPassword {
            record: admin,
            password: password_hash.to_owned(),
        };
        self.put(tables::ADMINS, &item, true).await
    }

    async fn admin_credentials(&self, login_name: &str) -> PortResult<Option<(Admin, String)>> {
        let item: Option<WithPassword<Admin>> = self.get(tables::ADMINS, login_name).await?;
        Ok(item.map(|i| (i.record, i.password)))
    }

    async fn update_profile(&self, username: &str, profile: &Profile, now: DateTime<Utc>) -> PortResult<User> {
        let fields = [
            ("phone", &profile.phone),
            ("email", &profile.email),
            ("nick_name", &profile.nick_name),
            ("name", &profile.name),
        ];
        let mut set = vec!["updated = :updated".to_owned()];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(self.table(tables::USERS))
            .key("username", AttributeValue::S(username.to_owned()))
            .condition_expression("attribute_exists(username)")
            .expression_attribute_values(":updated", AttributeValue::S(ts::format(&now)))
            .return_values(ReturnValue::AllNew);
        for (field, value) in fields {
            request = request.expression_attribute_names(format!("#{field}"), field);
            match value {
                Some(value) => {
                    set.push(format!("#{field} = :{field}"));
                    request =
                        request.expression_attribute_values(format!(":{field}"), AttributeValue::S(value.clone()));
                }
                None => remove.push(format!("#{field}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let output = request.update_expression(expression).send().await?;
        let stored: WithPassword<User> = serde_dynamo::from_item(output.attributes.unwrap_or_default())?;
        Ok(stored.record)
    }

    async fn admin_page(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Admin>> {
        let page: Page<WithPassword<Admin>> = self.scan_page(tables::ADMINS, limit, cursor).await?;
        Ok(Page {
            items: page.items.into_iter().map(|stored| stored.record).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn set_admin_status(&self, login_name: &str, status: AdminStatus) -> PortResult<Admin> {
        let output = self
            .client
            .update_item()
            .table_name(self.table(tables::ADMINS))
            .key("login_name", AttributeValue::S(login_name.to_owned()))
            .update_expression("SET #status = :status")
            .condition_expression("attribute_exists(login_name)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::N((status as u8).to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await?;
        let stored: WithPassword<Admin> = serde_dynamo::from_item(output.attributes.unwrap_or_default())?;
        Ok(stored.record)
    }

    async fn address_book(&self, username: &str) -> PortResult<AddressBook> {
        // The version first: a change that lands between the two reads then
        // fails its condition, instead of being decided on stale addresses.
        let book = self
            .client
            .get_item()
            .table_name(self.table(tables::ADDRESSES))
            .set_key(Some(book_key(username)))
            .consistent_read(true)
            .send()
            .await?;
        let version = match book.item.as_ref().and_then(|item| item.get("version")) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| PortError::Unavailable(format!("address book version {n}")))?,
            _ => 0,
        };
        let addresses = self
            .client
            .query()
            .table_name(self.table(tables::ADDRESSES))
            .key_condition_expression("username = :username AND id > :book")
            .expression_attribute_values(":username", AttributeValue::S(username.to_owned()))
            .expression_attribute_values(":book", AttributeValue::S(BOOK_ID.into()))
            .consistent_read(true)
            .limit(MAX_ADDRESSES as i32 + 1)
            .send()
            .await?;
        Ok(AddressBook {
            version,
            addresses: serde_dynamo::from_items(addresses.items.unwrap_or_default())?,
        })
    }

    async fn change_address_book(
        &self,
        username: &str,
        version: u64,
        put: &[Address],
        delete: Option<&str>,
    ) -> PortResult<()> {
        let table = self.table(tables::ADDRESSES);
        let same_version = if version == 0 {
            "attribute_not_exists(version)"
        } else {
            "version = :read"
        };
        let mut bump = Update::builder()
            .table_name(&table)
            .set_key(Some(book_key(username)))
            .update_expression("SET version = :next")
            .condition_expression(same_version)
            .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()));
        if version != 0 {
            bump = bump.expression_attribute_values(":read", AttributeValue::N(version.to_string()));
        }
        let mut items = vec![TransactWriteItem::builder().update(bump.build()?).build()];
        for address in put {
            let put = Put::builder()
                .table_name(&table)
                .set_item(Some(serde_dynamo::to_item(address)?))
                .build()?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(id) = delete {
            let key = HashMap::from([
                ("username".to_owned(), AttributeValue::S(username.to_owned())),
                ("id".to_owned(), AttributeValue::S(id.to_owned())),
            ]);
            let delete = Delete::builder().table_name(&table).set_key(Some(key)).build()?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(items).await
    }
}

/// The address book's own item, beside its addresses: it holds the
/// version. Address ids are ULIDs, which sort after it.
const BOOK_ID: &str = "#book";

fn book_key(username: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("username".to_owned(), AttributeValue::S(username.to_owned())),
        ("id".to_owned(), AttributeValue::S(BOOK_ID.to_owned())),
    ])
}
