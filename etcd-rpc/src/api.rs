//! The etcd v3 calls as [`Client`] methods: the raw form taking the request
//! message, and short forms for the common cases.

use crate::client::Client;
use crate::error::Error;
use crate::prefix_range;
use crate::proto::authpb::{Permission, UserAddOptions};
use crate::proto::mvccpb::KeyValue;
use crate::proto::*;

/// KV service.
impl Client {
    /// `KV.Range` with every field of the request.
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Error> {
        self.unary(method::RANGE, request).await
    }

    /// The newest value of one key (linearizable read), or `None`.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<KeyValue>, Error> {
        let response = self
            .range(RangeRequest {
                key: key.into(),
                ..Default::default()
            })
            .await?;
        Ok(response.kvs.into_iter().next())
    }

    /// Every key starting with `prefix`, in key order (linearizable read).
    ///
    /// For large prefixes page with [`Client::range`] and `limit` instead.
    pub async fn get_prefix(&self, prefix: impl Into<Vec<u8>>) -> Result<RangeResponse, Error> {
        let (key, range_end) = prefix_range(prefix.into());
        self.range(RangeRequest {
            key,
            range_end,
            ..Default::default()
        })
        .await
    }

    /// Number of keys starting with `prefix` (an empty prefix counts every key).
    pub async fn count_prefix(&self, prefix: impl Into<Vec<u8>>) -> Result<i64, Error> {
        let (key, range_end) = prefix_range(prefix.into());
        let response = self
            .range(RangeRequest {
                key,
                range_end,
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(response.count)
    }

    /// `KV.Put` with every field of the request.
    pub async fn put_request(&self, request: PutRequest) -> Result<PutResponse, Error> {
        self.unary(method::PUT, request).await
    }

    /// Writes one key; the header's revision is the revision of this write.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResponse, Error> {
        self.put_request(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
        .await
    }

    /// `KV.DeleteRange` with every field of the request.
    pub async fn delete_range(
        &self,
        request: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        self.unary(method::DELETE_RANGE, request).await
    }

    /// Deletes one key; `deleted` is 0 when it did not exist (and no revision is used).
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<DeleteRangeResponse, Error> {
        self.delete_range(DeleteRangeRequest {
            key: key.into(),
            ..Default::default()
        })
        .await
    }

    /// Deletes every key starting with `prefix`, in one revision.
    pub async fn delete_prefix(
        &self,
        prefix: impl Into<Vec<u8>>,
    ) -> Result<DeleteRangeResponse, Error> {
        let (key, range_end) = prefix_range(prefix.into());
        self.delete_range(DeleteRangeRequest {
            key,
            range_end,
            ..Default::default()
        })
        .await
    }

    /// `KV.Txn`.
    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Error> {
        self.unary(method::TXN, request).await
    }

    /// `KV.Compact`: discards history below `revision`; with `physical`, answers
    /// only once the backend has been compacted.
    pub async fn compact(
        &self,
        revision: i64,
        physical: bool,
    ) -> Result<CompactionResponse, Error> {
        self.unary(method::COMPACT, CompactionRequest { revision, physical })
            .await
    }
}

/// Lease service.
impl Client {
    /// `LeaseGrant` with every field of the request.
    pub async fn lease_grant_request(
        &self,
        request: LeaseGrantRequest,
    ) -> Result<LeaseGrantResponse, Error> {
        self.unary(method::LEASE_GRANT, request).await
    }

    /// Grants a lease of `ttl` seconds with a server-chosen ID.
    pub async fn lease_grant(&self, ttl: i64) -> Result<LeaseGrantResponse, Error> {
        self.lease_grant_request(LeaseGrantRequest { ttl, id: 0 })
            .await
    }

    /// Revokes a lease, deleting its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, Error> {
        self.unary(method::LEASE_REVOKE, LeaseRevokeRequest { id })
            .await
    }

    /// Remaining time of a lease, with its keys when `keys` is set.
    pub async fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<LeaseTimeToLiveResponse, Error> {
        self.unary(
            method::LEASE_TIME_TO_LIVE,
            LeaseTimeToLiveRequest { id, keys },
        )
        .await
    }

    /// Every lease.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, Error> {
        self.unary(method::LEASE_LEASES, LeaseLeasesRequest {})
            .await
    }
}

/// Cluster service.
impl Client {
    /// The cluster's members.
    pub async fn member_list(&self) -> Result<MemberListResponse, Error> {
        self.unary(method::MEMBER_LIST, MemberListRequest::default())
            .await
    }

    /// Adds a member (as a learner when `learner`); start it afterwards with
    /// `--initial-cluster-state existing`.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<MemberAddResponse, Error> {
        self.unary(
            method::MEMBER_ADD,
            MemberAddRequest {
                peer_urls,
                is_learner: learner,
            },
        )
        .await
    }

    /// Removes a member.
    pub async fn member_remove(&self, id: u64) -> Result<MemberRemoveResponse, Error> {
        self.unary(method::MEMBER_REMOVE, MemberRemoveRequest { id })
            .await
    }

    /// Changes a member's peer URLs.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<MemberUpdateResponse, Error> {
        self.unary(method::MEMBER_UPDATE, MemberUpdateRequest { id, peer_urls })
            .await
    }

    /// Promotes a learner that has caught up to a voting member.
    pub async fn member_promote(&self, id: u64) -> Result<MemberPromoteResponse, Error> {
        self.unary(method::MEMBER_PROMOTE, MemberPromoteRequest { id })
            .await
    }
}

/// Maintenance service.
impl Client {
    /// `Maintenance.Alarm` with every field of the request.
    pub async fn alarm(&self, request: AlarmRequest) -> Result<AlarmResponse, Error> {
        self.unary(method::ALARM, request).await
    }

    /// Every raised alarm.
    pub async fn alarm_list(&self) -> Result<AlarmResponse, Error> {
        self.alarm(AlarmRequest {
            action: AlarmAction::Get as i32,
            member_id: 0,
            alarm: AlarmType::None as i32,
        })
        .await
    }

    /// Clears an alarm (as listed by [`Client::alarm_list`]).
    pub async fn alarm_disarm(&self, alarm: AlarmMember) -> Result<AlarmResponse, Error> {
        self.alarm(AlarmRequest {
            action: AlarmAction::Deactivate as i32,
            member_id: alarm.member_id,
            alarm: alarm.alarm,
        })
        .await
    }

    /// Status of the member that answers (use a per-endpoint client, see
    /// [`Client::endpoint_clients`], to choose which).
    pub async fn status(&self) -> Result<StatusResponse, Error> {
        self.unary(method::STATUS, StatusRequest {}).await
    }

    /// Defragments the backend of the member that answers. Blocks that member's
    /// reads and writes while it runs; consider a longer request timeout.
    pub async fn defragment(&self) -> Result<DefragmentResponse, Error> {
        self.unary(method::DEFRAGMENT, DefragmentRequest {}).await
    }

    /// Hash of the answering member's whole backend.
    pub async fn hash(&self) -> Result<HashResponse, Error> {
        self.unary(method::HASH, HashRequest {}).await
    }

    /// Hash of the answering member's key space up to `revision` (0: newest).
    pub async fn hash_kv(&self, revision: i64) -> Result<HashKvResponse, Error> {
        self.unary(method::HASH_KV, HashKvRequest { revision })
            .await
    }

    /// Moves leadership to `target_id`; must be sent to the current leader.
    pub async fn move_leader(&self, target_id: u64) -> Result<MoveLeaderResponse, Error> {
        self.unary(method::MOVE_LEADER, MoveLeaderRequest { target_id })
            .await
    }
}

/// Auth service.
impl Client {
    /// Exchanges a user name and password for a token, without changing the
    /// token this client sends (set `user`/`password` in the connect options for that).
    pub async fn authenticate(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<AuthenticateResponse, Error> {
        self.unary(
            method::AUTHENTICATE,
            AuthenticateRequest {
                name: name.into(),
                password: password.into(),
            },
        )
        .await
    }

    /// Enables authentication (a `root` user with the `root` role must exist).
    pub async fn auth_enable(&self) -> Result<AuthEnableResponse, Error> {
        self.unary(method::AUTH_ENABLE, AuthEnableRequest {}).await
    }

    /// Disables authentication.
    pub async fn auth_disable(&self) -> Result<AuthDisableResponse, Error> {
        self.unary(method::AUTH_DISABLE, AuthDisableRequest {})
            .await
    }

    /// Whether authentication is enabled (etcd 3.5+).
    pub async fn auth_status(&self) -> Result<AuthStatusResponse, Error> {
        self.unary(method::AUTH_STATUS, AuthStatusRequest {}).await
    }

    /// `Auth.UserAdd` with every field of the request.
    pub async fn user_add_request(
        &self,
        request: AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse, Error> {
        self.unary(method::USER_ADD, request).await
    }

    /// Adds a user with a password.
    pub async fn user_add(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<AuthUserAddResponse, Error> {
        self.user_add_request(AuthUserAddRequest {
            name: name.into().into_bytes(),
            password: password.into().into_bytes(),
            options: Some(UserAddOptions { no_password: false }),
            hashed_password: Vec::new(),
        })
        .await
    }

    /// The roles of a user.
    pub async fn user_get(&self, name: impl Into<String>) -> Result<AuthUserGetResponse, Error> {
        self.unary(
            method::USER_GET,
            AuthUserGetRequest {
                name: name.into().into_bytes(),
            },
        )
        .await
    }

    /// Every user.
    pub async fn user_list(&self) -> Result<AuthUserListResponse, Error> {
        self.unary(method::USER_LIST, AuthUserListRequest {}).await
    }

    /// Deletes a user.
    pub async fn user_delete(
        &self,
        name: impl Into<String>,
    ) -> Result<AuthUserDeleteResponse, Error> {
        self.unary(
            method::USER_DELETE,
            AuthUserDeleteRequest {
                name: name.into().into_bytes(),
            },
        )
        .await
    }

    /// Changes a user's password.
    pub async fn user_change_password(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<AuthUserChangePasswordResponse, Error> {
        self.unary(
            method::USER_CHANGE_PASSWORD,
            AuthUserChangePasswordRequest {
                name: name.into().into_bytes(),
                password: password.into().into_bytes(),
                hashed_password: Vec::new(),
            },
        )
        .await
    }

    /// Grants a role to a user.
    pub async fn user_grant_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<AuthUserGrantRoleResponse, Error> {
        self.unary(
            method::USER_GRANT_ROLE,
            AuthUserGrantRoleRequest {
                user: user.into().into_bytes(),
                role: role.into().into_bytes(),
            },
        )
        .await
    }

    /// Revokes a role from a user.
    pub async fn user_revoke_role(
        &self,
        name: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<AuthUserRevokeRoleResponse, Error> {
        self.unary(
            method::USER_REVOKE_ROLE,
            AuthUserRevokeRoleRequest {
                name: name.into().into_bytes(),
                role: role.into().into_bytes(),
            },
        )
        .await
    }

    /// Adds a role.
    pub async fn role_add(&self, name: impl Into<String>) -> Result<AuthRoleAddResponse, Error> {
        self.unary(
            method::ROLE_ADD,
            AuthRoleAddRequest {
                name: name.into().into_bytes(),
            },
        )
        .await
    }

    /// The permissions of a role.
    pub async fn role_get(&self, role: impl Into<String>) -> Result<AuthRoleGetResponse, Error> {
        self.unary(
            method::ROLE_GET,
            AuthRoleGetRequest {
                role: role.into().into_bytes(),
            },
        )
        .await
    }

    /// Every role.
    pub async fn role_list(&self) -> Result<AuthRoleListResponse, Error> {
        self.unary(method::ROLE_LIST, AuthRoleListRequest {}).await
    }

    /// Deletes a role.
    pub async fn role_delete(
        &self,
        role: impl Into<String>,
    ) -> Result<AuthRoleDeleteResponse, Error> {
        self.unary(
            method::ROLE_DELETE,
            AuthRoleDeleteRequest {
                role: role.into().into_bytes(),
            },
        )
        .await
    }

    /// Grants a permission to a role.
    pub async fn role_grant_permission(
        &self,
        name: impl Into<String>,
        permission: Permission,
    ) -> Result<AuthRoleGrantPermissionResponse, Error> {
        self.unary(
            method::ROLE_GRANT_PERMISSION,
            AuthRoleGrantPermissionRequest {
                name: name.into().into_bytes(),
                perm: Some(permission),
            },
        )
        .await
    }

    /// Revokes the permission on `[key, range_end)` from a role.
    pub async fn role_revoke_permission(
        &self,
        role: impl Into<String>,
        key: impl Into<Vec<u8>>,
        range_end: impl Into<Vec<u8>>,
    ) -> Result<AuthRoleRevokePermissionResponse, Error> {
        self.unary(
            method::ROLE_REVOKE_PERMISSION,
            AuthRoleRevokePermissionRequest {
                role: role.into().into_bytes(),
                key: key.into(),
                range_end: range_end.into(),
            },
        )
        .await
    }
}
