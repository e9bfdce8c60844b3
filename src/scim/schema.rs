//! The SCIM schemas Tessera serves (RFC 7643 §4 and §8.7): one static definition drives the
//! `/Schemas` documents, name resolution in filters, PATCH paths and `attributes` lists, and the
//! validation of what clients write.

use super::filter::AttrPath;
use crate::store::query::{Attr, AttrKind};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// RFC 7643 §2.2 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §2.2 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    /// Only when the client names it in `attributes`.
    Request,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: AttrKind,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// `uniqueness: server` when true, `none` otherwise.
    pub unique: bool,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttrDef],
    pub description: &'static str,
}

const fn attr(name: &'static str, kind: AttrKind, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
        description,
    }
}

const fn string(name: &'static str, description: &'static str) -> AttrDef {
    attr(name, AttrKind::String, description)
}

const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttrDef],
) -> AttrDef {
    AttrDef {
        sub_attributes,
        ..attr(name, AttrKind::Complex, description)
    }
}

const fn reference(
    name: &'static str,
    description: &'static str,
    reference_types: &'static [&'static str],
) -> AttrDef {
    AttrDef {
        reference_types,
        case_exact: true,
        ..attr(name, AttrKind::Reference, description)
    }
}

impl AttrDef {
    const fn multi(self) -> Self {
        AttrDef {
            multi_valued: true,
            ..self
        }
    }
    const fn required(self) -> Self {
        AttrDef {
            required: true,
            ..self
        }
    }
    const fn case_exact(self) -> Self {
        AttrDef {
            case_exact: true,
            ..self
        }
    }
    const fn read_only(self) -> Self {
        AttrDef {
            mutability: Mutability::ReadOnly,
            ..self
        }
    }
    const fn immutable(self) -> Self {
        AttrDef {
            mutability: Mutability::Immutable,
            ..self
        }
    }
    const fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        AttrDef {
            canonical_values,
            ..self
        }
    }

    const fn returned_always(self) -> Self {
        AttrDef {
            returned: Returned::Always,
            ..self
        }
    }
    const fn returned_on_request(self) -> Self {
        AttrDef {
            returned: Returned::Request,
            ..self
        }
    }
    const fn write_only(self) -> Self {
        AttrDef {
            mutability: Mutability::WriteOnly,
            returned: Returned::Never,
            ..self
        }
    }
    const fn unique(self) -> Self {
        AttrDef {
            unique: true,
            ..self
        }
    }

    /// The sub-attribute named `name`, case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub_attributes, name)
    }
}

fn find(attributes: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The `value`, `display`, `type` and `primary` sub-attributes of the plural attributes of
/// RFC 7643 §2.4, with the given `type` canonical values.
macro_rules! plural {
    ($name:literal, $description:literal, $value:expr, [$($ty:literal),*]) => {
        complex($name, $description, &[
            $value,
            string("display", "A human-readable name, primarily used for display purposes."),
            string("type", "A label indicating the attribute's function.").canonical(&[$($ty),*]),
            attr("primary", AttrKind::Boolean, "Whether this is the preferred value."),
        ]).multi()
    };
}

/// `id`, `externalId` and `meta` (RFC 7643 §3.1), which every resource has.
static COMMON: [AttrDef; 3] = [
    string(
        "id",
        "Unique identifier for the resource, assigned by the service provider.",
    )
    .case_exact()
    .read_only()
    .returned_always(),
    string(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    complex(
        "meta",
        "Resource metadata.",
        &[
            string(
                "resourceType",
                "The name of the resource type of the resource.",
            )
            .case_exact()
            .read_only(),
            attr(
                "created",
                AttrKind::DateTime,
                "When the resource was added.",
            )
            .read_only(),
            attr(
                "lastModified",
                AttrKind::DateTime,
                "When the resource was last changed.",
            )
            .read_only(),
            reference("location", "The URI of the resource.", &["uri"]).read_only(),
            string("version", "The version (ETag) of the resource.")
                .case_exact()
                .read_only(),
        ],
    )
    .read_only(),
];

/// RFC 7643 §4.1 and §8.7.1.
static USER_ATTRIBUTES: [AttrDef; 21] = [
    string(
        "userName",
        "Unique identifier for the User, used to sign in.",
    )
    .required()
    .unique(),
    complex(
        "name",
        "The components of the user's real name.",
        &[
            string("formatted", "The full name, formatted for display."),
            string("familyName", "The family name of the User."),
            string("givenName", "The given name of the User."),
            string("middleName", "The middle name(s) of the User."),
            string("honorificPrefix", "The honorific prefix(es) of the User."),
            string("honorificSuffix", "The honorific suffix(es) of the User."),
        ],
    ),
    string(
        "displayName",
        "The name of the User, suitable for display to end-users.",
    ),
    string("nickName", "The casual way to address the user."),
    reference(
        "profileUrl",
        "A URI that is a uniform resource locator for the User's online profile.",
        &["external"],
    ),
    string("title", "The user's title, such as \"Vice President\"."),
    string(
        "userType",
        "The relationship between the organization and the user.",
    ),
    string(
        "preferredLanguage",
        "The User's preferred written or spoken language.",
    ),
    string("locale", "The User's default location for localizing."),
    string(
        "timezone",
        "The User's time zone in the 'Olson' time zone database format.",
    ),
    attr(
        "active",
        AttrKind::Boolean,
        "The User's administrative status: false forbids sign-in.",
    ),
    string(
        "password",
        "The User's cleartext password, write-only; stored as an argon2id hash.",
    )
    .write_only(),
    plural!(
        "emails",
        "Email addresses for the user.",
        string("value", "Email address for the User."),
        ["work", "home", "other"]
    ),
    plural!(
        "phoneNumbers",
        "Phone numbers for the User.",
        string("value", "Phone number of the User."),
        ["work", "home", "mobile", "fax", "pager", "other"]
    ),
    plural!(
        "ims",
        "Instant messaging addresses for the User.",
        string("value", "Instant messaging address for the User."),
        ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
    ),
    plural!(
        "photos",
        "URLs of photos of the User.",
        reference("value", "URL of a photo of the User.", &["external"]),
        ["photo", "thumbnail"]
    ),
    complex(
        "addresses",
        "A physical mailing address for this User.",
        &[
            string(
                "formatted",
                "The full mailing address, formatted for display.",
            ),
            string("streetAddress", "The full street address component."),
            string("locality", "The city or locality component."),
            string("region", "The state or region component."),
            string("postalCode", "The zip code or postal code component."),
            string("country", "The country name component."),
            string("type", "A label indicating the attribute's function.")
                .canonical(&["work", "home", "other"]),
            attr(
                "primary",
                AttrKind::Boolean,
                "Whether this is the preferred address.",
            ),
        ],
    )
    .multi(),
    complex(
        "groups",
        "The groups the user belongs to, managed through the Group resource.",
        &[
            string("value", "The identifier of the User's group.").read_only(),
            reference(
                "$ref",
                "The URI of the corresponding Group resource.",
                &["Group"],
            )
            .read_only(),
            string("display", "The name of the group.").read_only(),
            string("type", "How the membership is held.")
                .canonical(&["direct"])
                .read_only(),
        ],
    )
    .multi()
    .read_only(),
    plural!(
        "entitlements",
        "A list of entitlements for the User.",
        string("value", "The value of an entitlement."),
        []
    ),
    plural!(
        "roles",
        "A list of roles for the User.",
        string("value", "The value of a role."),
        []
    ),
    plural!(
        "x509Certificates",
        "A list of certificates issued to the User.",
        attr(
            "value",
            AttrKind::Binary,
            "The value of an X.509 certificate."
        ),
        []
    ),
];

/// RFC 7643 §4.3.
static ENTERPRISE_USER_ATTRIBUTES: [AttrDef; 6] = [
    string(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex(
        "manager",
        "The User's manager.",
        &[
            string(
                "value",
                "The id of the SCIM resource representing the User's manager.",
            )
            .case_exact(),
            reference(
                "$ref",
                "The URI of the SCIM resource representing the User's manager.",
                &["User"],
            ),
            string("displayName", "The displayName of the User's manager.").read_only(),
        ],
    ),
];

/// RFC 7643 §4.2 and §8.7.1.
static GROUP_ATTRIBUTES: [AttrDef; 2] = [
    string("displayName", "A human-readable name for the Group.")
        .required()
        .unique(),
    complex(
        "members",
        "A list of members of the Group (users).",
        &[
            string("value", "Identifier of the member of this Group.")
                .case_exact()
                .immutable(),
            reference(
                "$ref",
                "The URI corresponding to a SCIM resource that is a member of this Group.",
                &["User"],
            )
            .immutable(),
            string("display", "The member's display name, from the user.")
                .read_only()
                .returned_on_request(),
            string("type", "The type of the member.")
                .canonical(&["User"])
                .immutable(),
        ],
    )
    .multi(),
];

/// A schema document (RFC 7643 §7).
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

pub static USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &USER_ATTRIBUTES,
};

pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_USER_ATTRIBUTES,
};

pub static GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &GROUP_ATTRIBUTES,
};

pub static SCHEMAS: [&Schema; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

/// A resource type (RFC 7643 §6): its core schema and extensions.
#[derive(Debug)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[&ENTERPRISE_USER],
};

pub static GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    extensions: &[],
};

pub static RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

/// An attribute found in a resource type: its extension schema (if any), definition and the
/// named sub-attribute.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub extension: Option<&'static Schema>,
    pub def: &'static AttrDef,
    pub sub: Option<&'static AttrDef>,
}

impl Resolved {
    /// The definition of what the path names: the sub-attribute's, or the attribute's.
    pub fn target(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.def)
    }

    /// The store's view of this attribute.
    pub fn attr(&self) -> Attr {
        let target = self.target();
        Attr {
            schema: self.extension.map(|s| s.id),
            name: self.def.name,
            sub: self.sub.map(|s| s.name),
            kind: target.kind,
            case_exact: target.case_exact,
            multi_valued: self.def.multi_valued,
        }
    }
}

impl ResourceType {
    /// The extension schema with this URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves a written path to definitions (RFC 7644 §3.10: names are case-insensitive, a
    /// schema URN prefix may qualify them). `None` if the resource has no such attribute.
    pub fn resolve(&self, path: &AttrPath) -> Option<Resolved> {
        let (extension, def) = match &path.schema {
            Some(urn) if urn.eq_ignore_ascii_case(self.schema.id) => {
                (None, self.core_attribute(&path.attr)?)
            }
            Some(urn) => {
                let extension = self.extension(urn)?;
                (Some(extension), find(extension.attributes, &path.attr)?)
            }
            None => match self.core_attribute(&path.attr) {
                Some(def) => (None, def),
                None => self.extensions.iter().find_map(|extension| {
                    Some((Some(*extension), find(extension.attributes, &path.attr)?))
                })?,
            },
        };
        let sub = match &path.sub {
            Some(name) => Some(def.sub(name)?),
            None => None,
        };
        Some(Resolved {
            extension,
            def,
            sub,
        })
    }

    /// A core or common attribute.
    pub fn core_attribute(&self, name: &str) -> Option<&'static AttrDef> {
        find(&COMMON, name).or_else(|| find(self.schema.attributes, name))
    }
}
