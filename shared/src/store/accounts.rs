//! [`AccountStore`] on DynamoDB: shoppers, operators, shipping addresses.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Dynamo, IndexPage, tables};
use crate::{
    domain::accounts::MAX_ADDRESSES,
    model::{Address, Admin, AdminStatus, Profile, User},
    ports::{AccountStore, Page, PortResult},
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

    async fn addresses_of(&self, username: &str) -> PortResult<Vec<Address>> {
        let page: Page<Address> = self
            .index_page(IndexPage {
                table: tables::ADDRESSES,
                index: None,
                partition: ("username", username),
                limit: MAX_ADDRESSES,
                cursor: None,
                newest_first: false,
            })
            .await?;
        Ok(page.items)
    }

    async fn put_address(&self, address: &Address) -> PortResult<()> {
        self.put(tables::ADDRESSES, address, false).await
    }

    async fn delete_address(&self, username: &str, id: &str) -> PortResult<()> {
        self.delete(tables::ADDRESSES, &[("username", username), ("id", id)])
            .await
    }
}
