"""SQLAlchemy 2 models of the annotation store. The schema is created by Alembic migrations
(``galaxalign/store/migrations``), never by ``create_all`` in production code."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("guest", "volunteer", "researcher", "admin")  # in rising order of rights
MODEL_STATUSES = ("candidate", "active", "retired")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class RegisteredSurvey(Base):
    __tablename__ = "surveys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    path: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(40))
    label_set: Mapped[str | None] = mapped_column(String(40))
    class_names: Mapped[list] = mapped_column(JSON)
    workflow: Mapped[str] = mapped_column(String(20), default="gz2")  # gz2 tree or flat class list
    n_galaxies: Mapped[int] = mapped_column(Integer)
    preparation: Mapped[dict | None] = mapped_column(JSON)  # galaxalign.prepare.Preparation.to_dict()
    label_set_file: Mapped[str | None] = mapped_column(String(1000))  # a label-set YAML outside the built-ins
    train_config: Mapped[str | None] = mapped_column(String(1000))  # the config re-training uses
    # the anchoring control: this fraction of tasks shows no proposal (galaxalign.gate.is_blind)
    blind_fraction: Mapped[float] = mapped_column(Float, default=0.1, server_default="0.1")
    # RetirementRule fields (galaxalign.store.retirement); None: the defaults (majority, 5 votes, early at 3 × 80 %)
    retirement: Mapped[dict | None] = mapped_column(JSON)
    # gold tasks may also come from this survey: rendered galaxies with known truth (galaxalign.importer.inject_gold)
    gold_from_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id", ondelete="SET NULL"))
    # the fast refresh (galaxalign.jobs.refresh): queued after every ``refresh_every`` new votes (0: never);
    # ``refreshed_votes``: the survey's votes when the last one started
    refresh_every: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    refreshed_votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # what the queue puts first for volunteers (galaxalign.store.queue.QUEUE_STRATEGIES)
    queue_strategy: Mapped[str] = mapped_column(String(20), default="entropy", server_default="entropy")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Galaxy(Base):
    __tablename__ = "galaxies"
    __table_args__ = (UniqueConstraint("survey_id", "id_str", name="uq_galaxy_survey_id_str"),
                      Index("ix_galaxy_queue", "survey_id", "retired", "n_votes"),
                      Index("ix_galaxy_survey_idx", "survey_id", "idx"))  # the queue's random slice
    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    id_str: Mapped[str] = mapped_column(String(200))
    idx: Mapped[int] = mapped_column(Integer)  # row of the image in the survey file
    ra: Mapped[float | None] = mapped_column(Float)
    dec: Mapped[float | None] = mapped_column(Float)
    known_label: Mapped[int | None] = mapped_column(Integer)
    gold: Mapped[bool] = mapped_column(Boolean, default=False)
    n_votes: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    retired_reason: Mapped[str | None] = mapped_column(String(40))
    consensus_label: Mapped[int | None] = mapped_column(Integer)
    consensus_agreement: Mapped[float | None] = mapped_column(Float)
    survey: Mapped[RegisteredSurvey] = relationship()


class Volunteer(Base):
    __tablename__ = "volunteers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)  # the display form, as typed (NFKC)
    # NFKC + casefold of the name: "Ada", "ada" and "Ａｄａ" are one key, so one account (galaxalign.names)
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), default="volunteer")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    tutorial_seen_at: Mapped[datetime | None] = mapped_column(DateTime)  # None: the Classify page shows the tutorial
    talk_suspended_at: Mapped[datetime | None] = mapped_column(DateTime)  # set: may read Talk, not post
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime)  # set: may neither sign in nor vote
    suspended_reason: Mapped[str | None] = mapped_column(String(200))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)  # personal data erased on request; votes kept


class Classification(Base):
    __tablename__ = "classifications"
    __table_args__ = (UniqueConstraint("galaxy_id", "volunteer_id", name="uq_one_vote_per_volunteer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    workflow: Mapped[str] = mapped_column(String(20))
    workflow_version: Mapped[str] = mapped_column(String(20))
    answers: Mapped[list] = mapped_column(JSON)  # [[task, answer], ...] or [["FLAT", class index]]
    resolved_class: Mapped[int | None] = mapped_column(Integer)
    proposal_class: Mapped[int | None] = mapped_column(Integer)
    proposal_confidence: Mapped[float | None] = mapped_column(Float)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    # True: a control task — the model's proposal (proposal_class) was hidden on purpose; accepted is None
    blind: Mapped[bool | None] = mapped_column(Boolean)
    seconds: Mapped[float | None] = mapped_column(Float)
    guest: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # cast without an account
    # True: the galaxy had retired while it was on the volunteer's screen — stored and exported, never
    # counted toward its consensus or retirement (Panoptes' "retired" subject selection state)
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    galaxy: Mapped[Galaxy] = relationship()
    volunteer: Mapped[Volunteer] = relationship()


class Lease(Base):
    """A galaxy on a volunteer's screen, held for them until ``expires_at``: the queue counts it as a vote
    on its way, so a nearly retired galaxy is not sent to more volunteers than it needs (one per volunteer:
    serving the next galaxy replaces it, a vote releases it)."""
    __tablename__ = "leases"
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id", ondelete="SET NULL"))
    config: Mapped[dict] = mapped_column(JSON)
    checkpoint_path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    embeddings_path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("model_version_id", "galaxy_id", name="uq_prediction"),
                      Index("ix_prediction_entropy", "model_version_id", "entropy"),  # the most uncertain first
                      Index("ix_prediction_disagreement", "model_version_id", "disagreement"),
                      Index("ix_prediction_mutual_info", "model_version_id", "mutual_info"))
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"), index=True)
    probs: Mapped[list] = mapped_column(JSON)
    top_class: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    entropy: Mapped[float] = mapped_column(Float)
    ood: Mapped[float | None] = mapped_column(Float)  # unfamiliarity: > 1 out of distribution (galaxalign.ood)
    # how much the text head and the symbol head disagree, 0–1 (galaxalign.inference.head_disagreement)
    disagreement: Mapped[float | None] = mapped_column(Float)
    # BALD: the mutual information of the refreshed heads' ensemble, 0–1 (galaxalign.heads); None before one
    mutual_info: Mapped[float | None] = mapped_column(Float)


class Hunt(Base):
    """A rare-object hunt (galaxalign.hunt): what it looks for (``query``: example galaxies, a text, a
    symbol, a target class) in one survey."""
    __tablename__ = "hunts"
    __table_args__ = (UniqueConstraint("survey_id", "name", name="uq_hunt_survey_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    survey: Mapped[RegisteredSurvey] = relationship()


class HuntVote(Base):
    """One volunteer's decision on one candidate of a hunt: confirmed (it is what the hunt looks for) or not."""
    __tablename__ = "hunt_votes"
    __table_args__ = (UniqueConstraint("hunt_id", "galaxy_id", "volunteer_id", name="uq_one_hunt_vote"),
                      Index("ix_hunt_votes_hunt", "hunt_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    hunt_id: Mapped[int] = mapped_column(ForeignKey("hunts.id", ondelete="CASCADE"))
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    confirmed: Mapped[bool] = mapped_column(Boolean)
    round: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GalaxyFlag(Base):
    """A volunteer's favourite, or their "something odd" flag with a reason (galaxalign.store.flags)."""
    __tablename__ = "galaxy_flags"
    __table_args__ = (UniqueConstraint("galaxy_id", "volunteer_id", "kind", name="uq_one_flag_of_a_kind"),
                      Index("ix_galaxy_flags_galaxy", "galaxy_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # favourite or odd
    reason: Mapped[str | None] = mapped_column(String(40))  # odd: one of galaxalign.store.flags.ODD_REASONS
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Comment(Base):
    """A volunteer's comment on a galaxy in Talk (galaxalign.store.talk); Markdown, rendered by galaxalign.talk."""
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_galaxy", "galaxy_id", "created_at"),
                      Index("ix_comments_volunteer", "volunteer_id", "created_at"),
                      Index("ix_comments_created", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime)  # set by a moderator: shown to admins only
    hidden_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))


class CommentTag(Base):
    """A #hashtag of a comment, with its galaxy (the tag's page lists galaxies without a join)."""
    __tablename__ = "comment_tags"
    __table_args__ = (Index("ix_comment_tags_tag", "tag", "galaxy_id"),)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    galaxy_id: Mapped[int] = mapped_column(ForeignKey("galaxies.id", ondelete="CASCADE"))


class CommentMention(Base):
    """An @mention of a volunteer in a comment."""
    __tablename__ = "comment_mentions"
    __table_args__ = (Index("ix_comment_mentions_volunteer", "volunteer_id"),)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)


class ModerationAction(Base):
    """One moderation action (hide, unhide, delete, suspend, unsuspend), who took it and why; a deleted
    comment's text is kept here, for the record."""
    __tablename__ = "moderation_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20))
    comment_id: Mapped[int | None] = mapped_column(Integer)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProjectSetting(Base):
    """One project-wide setting (galaxalign.store.project): the home page's text, who may join, guests."""
    __tablename__ = "project_settings"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[object | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AccountLink(Base):
    """A one-time account link: an invitation to join (with the role it grants) or a password reset for
    one account. The URL carries this row's id signed and timed (galaxalign.links); ``used_at`` makes it
    single-use."""
    __tablename__ = "account_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # invite or reset
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(20))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(String(500))
    log_tail: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    worker_pid: Mapped[int | None] = mapped_column(Integer)
