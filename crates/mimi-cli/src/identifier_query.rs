//! `mimi profile` and `mimi find`: what others may find us by, and finding them
//! (identifierQuery, protocol-06 §5.8).

use std::path::Path;

use mimi_client::{
    Client, ClientError, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, ProfileChange,
    ProfileView, QueryElement, SearchField,
};

use crate::ProfileCommand;
use crate::output::out;

/// The conditions of `mimi find`, each repeatable.
pub(crate) struct Query {
    /// `--handle`: `handle` elements.
    pub(crate) handle: Vec<String>,
    /// `--nick`: `nick` elements.
    pub(crate) nick: Vec<String>,
    /// `--email`: `email` elements.
    pub(crate) email: Vec<String>,
    /// `--phone`: `phone` elements.
    pub(crate) phone: Vec<String>,
    /// `--name`: `partialName` elements.
    pub(crate) name: Vec<String>,
    /// `--any`: `wholeProfile` elements.
    pub(crate) any: Vec<String>,
}

impl Query {
    /// The request: one element per condition, in the order of the options.
    fn request(self) -> IdentifierRequest {
        let mut elements = Vec::new();
        for (field, values) in [
            (SearchField::Handle, self.handle),
            (SearchField::Nick, self.nick),
            (SearchField::Email, self.email),
            (SearchField::Phone, self.phone),
            (SearchField::PartialName, self.name),
            (SearchField::WholeProfile, self.any),
        ] {
            elements.extend(
                values
                    .into_iter()
                    .map(|v| QueryElement::new(field.clone(), v)),
            );
        }
        IdentifierRequest::new(elements)
    }
}

/// `mimi profile ...`: shows the profile, or applies one change and prints the changed field.
pub(crate) async fn profile(profile: &Path, command: ProfileCommand) -> anyhow::Result<()> {
    let mut client = Client::open(profile)?;
    let (change, field) = match command {
        ProfileCommand::Show { json } => {
            let view = client.public_profile().await?;
            if json {
                out!("{}", serde_json::to_string(&view)?);
            } else {
                for line in lines(&view) {
                    out!("{line}");
                }
            }
            return Ok(());
        }
        ProfileCommand::Set { field, value } => (
            ProfileChange::Set {
                field: field.clone(),
                value,
            },
            field,
        ),
        ProfileCommand::Clear { field } => (
            ProfileChange::Clear {
                field: field.clone(),
            },
            field,
        ),
        ProfileCommand::Searchable { field, state } => (
            ProfileChange::Searchable {
                field: field.clone(),
                on: state == "on",
            },
            field,
        ),
    };
    let view = client.change_public_profile(&change).await?;
    // The changed field as it now stands.
    let index = view.fields.iter().position(|f| f.field == field);
    if let Some(line) = index.and_then(|i| lines(&view).into_iter().nth(i)) {
        out!("{line}");
    }
    Ok(())
}

/// `mimi find DOMAIN ...`: the found users' URIs, or a refusal (exit 1) for any other answer.
pub(crate) async fn find(
    profile: &Path,
    domain: &str,
    query: Query,
    json: bool,
) -> anyhow::Result<()> {
    let client = Client::open(profile)?;
    let answer = client.identifier_query(domain, &query.request()).await?;
    let why = match answer.response_code {
        IdentifierQueryCode::Success => {
            print_found(&answer, json)?;
            return Ok(());
        }
        IdentifierQueryCode::NotFound => "nobody matches",
        IdentifierQueryCode::Ambiguous => "too many users match; make the query more exact",
        IdentifierQueryCode::Forbidden => "this query is not allowed (give 1 to 8 conditions)",
        IdentifierQueryCode::UnsupportedField => "one of the fields is not searchable there",
    };
    Err(ClientError::Refused(format!(
        "{domain} answered {}: {why}",
        answer.response_code.name()
    ))
    .into())
}

/// One line per field: name, value (`-` when unset), and whether it is searchable.
fn lines(view: &ProfileView) -> Vec<String> {
    view.fields
        .iter()
        .map(|f| {
            format!(
                "{:<7} {}{}",
                f.field,
                f.value.as_deref().unwrap_or("-"),
                if f.searchable { "  (searchable)" } else { "" }
            )
        })
        .collect()
}

/// Each found user's URI, or with `json` one array of `{uri, fields}`.
fn print_found(answer: &IdentifierResponse, json: bool) -> anyhow::Result<()> {
    if !json {
        for uri in &answer.uri {
            out!("{uri}");
        }
        return Ok(());
    }
    let found: Vec<serde_json::Value> = answer
        .uri
        .iter()
        .map(|uri| {
            let fields: Vec<serde_json::Value> = answer
                .found_profiles
                .iter()
                .filter(|p| p.stable_uri == *uri)
                .flat_map(|p| &p.fields)
                .map(|f| {
                    serde_json::json!({
                        "source": f.field_source.name(),
                        "name": f.field_name,
                        "value": String::from_utf8_lossy(&f.field_value),
                    })
                })
                .collect();
            serde_json::json!({ "uri": uri.as_str(), "fields": fields })
        })
        .collect();
    out!("{}", serde_json::to_string(&found)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::{Cli, Command};

    #[test]
    fn find_options_become_one_element_each_in_option_order() {
        let cli = Cli::try_parse_from([
            "mimi",
            "find",
            "a.example",
            "--any",
            "lee",
            "--email",
            "al@a.example",
            "--name",
            "ann",
            "--name",
            "lee",
        ])
        .unwrap();
        let Command::Find {
            domain,
            handle,
            nick,
            email,
            phone,
            name,
            any,
            ..
        } = cli.command
        else {
            panic!("not find");
        };
        assert_eq!(domain, "a.example");
        let request = Query {
            handle,
            nick,
            email,
            phone,
            name,
            any,
        }
        .request();
        let got: Vec<(SearchField, &str)> = request
            .query_elements
            .iter()
            .map(|e| (e.field.clone(), e.search_value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (SearchField::Email, "al@a.example"),
                (SearchField::PartialName, "ann"),
                (SearchField::PartialName, "lee"),
                (SearchField::WholeProfile, "lee"),
            ]
        );
    }

    #[test]
    fn profile_fields_are_named_on_the_command_line() {
        for ok in [
            &["mimi", "profile", "set", "email", "al@a.example"][..],
            &["mimi", "profile", "clear", "name"],
            &["mimi", "profile", "searchable", "nick", "on"],
            &["mimi", "profile", "show", "--json"],
        ] {
            assert!(Cli::try_parse_from(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["mimi", "profile", "set", "nick", "x"][..],
            &["mimi", "profile", "searchable", "email", "yes"],
            &["mimi", "profile", "clear", "age"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
