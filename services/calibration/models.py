"""One expected-recovery fit per instrument and month (the OFF_TRACK tier of CLINICAL.md section 4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow
from services.signals import TrajectoryModel


class TrajectoryFit(Base):
    """y = b0 + b1 y0 + (b2 + b3 y0) ln(t + 1) fitted on closed episodes; the newest per instrument is in force."""

    __tablename__ = "trajectory_fits"
    __table_args__ = (UniqueConstraint("instrument_code", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_code: Mapped[str] = mapped_column(String(40))
    # The month the fit belongs to (YYYY-MM): one fit per instrument and month, so a repeated run is a no-op.
    period: Mapped[str] = mapped_column(String(7))
    b0: Mapped[float] = mapped_column(Float)
    b1: Mapped[float] = mapped_column(Float)
    b2: Mapped[float] = mapped_column(Float)
    b3: Mapped[float] = mapped_column(Float)
    sigma_pred: Mapped[float] = mapped_column(Float)
    n_episodes: Mapped[int]
    n_observations: Mapped[int]
    # Goodness of fit: R^2 of the fitted curve on the observations it was fitted on.
    r_squared: Mapped[float | None] = mapped_column(Float)
    # Set when the fit is not over the practice's own episodes (the demo's labelled synthetic reference cohort).
    reference: Mapped[str | None] = mapped_column(String(200))
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def model(self) -> TrajectoryModel:
        """The fit as the pure rules' model."""
        return TrajectoryModel(
            b0=self.b0,
            b1=self.b1,
            b2=self.b2,
            b3=self.b3,
            sigma_pred=self.sigma_pred,
            n_episodes=self.n_episodes,
            n_observations=self.n_observations,
            instrument=self.instrument_code,
            fitted_on=self.fitted_at.date().isoformat(),
            r_squared=self.r_squared,
            reference=self.reference,
        )
