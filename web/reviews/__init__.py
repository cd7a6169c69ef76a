"""Case reviews: the supervisor's agenda and the review form."""
