# Reference numbers from independent software for tests/analysis/test_reference_r.py.
#
# Fits the primary models of DESIGN section 7 on analysis/reference/cohort.csv (300 simulated
# patients, written by analysis.simulate.simulate_cohort(300, seed=20261126)) with
#   - lme4::lmer (REML) for the four ONS4 items (random intercept per patient),
#   - geepack::geeglm (exchangeable) for GP contacts (Poisson) and loneliness often/always (logit),
# and writes analysis/reference/reference.json with coefficients renamed to statsmodels' terms.
#
# Run from the repository root:  Rscript analysis/reference/make_reference.R
# Needs: apt-get install r-base-core r-cran-lme4 r-cran-geepack r-cran-jsonlite

suppressPackageStartupMessages({
  library(lme4)
  library(geepack)
  library(jsonlite)
})

here <- "analysis/reference"
d <- read.csv(file.path(here, "cohort.csv"), stringsAsFactors = FALSE)
d$pattern <- factor(d$pattern, levels = c("rapid", "anchored", "with_only"))
d$wave <- factor(d$wave, levels = c(0, 6, 12))
d$gender <- factor(d$gender, levels = sort(unique(d$gender)))
d$imd_quintile <- factor(d$imd_quintile, levels = 1:5)
d$pid <- factor(d$pid)
d <- d[order(d$pid, d$wave), ]

formula_rhs <- "pattern * wave + age + gender + imd_quintile"

# R coefficient name -> statsmodels (patsy) term name.
sm_name <- function(r) {
  P <- "C(pattern, Treatment('rapid'))"
  W <- "C(wave, Treatment(0))"
  map_one <- function(part) {
    if (part == "(Intercept)") return("Intercept")
    if (part == "age") return("age")
    if (startsWith(part, "pattern")) return(sprintf("%s[T.%s]", P, sub("^pattern", "", part)))
    if (startsWith(part, "wave")) return(sprintf("%s[T.%s]", W, sub("^wave", "", part)))
    if (startsWith(part, "gender")) return(sprintf("C(gender)[T.%s]", sub("^gender", "", part)))
    if (startsWith(part, "imd_quintile")) {
      return(sprintf("C(imd_quintile)[T.%s]", sub("^imd_quintile", "", part)))
    }
    stop(paste("unmapped term", part))
  }
  vapply(r, function(x) paste(vapply(strsplit(x, ":")[[1]], map_one, ""), collapse = ":"), "")
}

out <- list(
  software = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    geepack = as.character(packageVersion("geepack"))
  ),
  data = "analysis/reference/cohort.csv",
  models = list()
)

for (item in c("life_satisfaction", "worthwhile", "happy", "anxious")) {
  sub <- d[d$responded == 1 & !is.na(d[[item]]), ]
  sub$gender <- droplevels(sub$gender)
  f <- as.formula(sprintf("%s ~ %s + (1 | pid)", item, formula_rhs))
  m <- lmer(f, data = sub, REML = TRUE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12)))
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  vc <- as.data.frame(VarCorr(m))
  out$models[[paste0(item, "_mixed")]] <- list(
    engine = "lme4::lmer REML",
    n_obs = nrow(sub),
    n_groups = length(unique(sub$pid)),
    params = setNames(as.list(unname(fe)), sm_name(names(fe))),
    se = setNames(as.list(unname(se)), sm_name(names(fe))),
    group_var = vc$vcov[vc$grp == "pid"],
    residual_var = vc$vcov[vc$grp == "Residual"],
    reml_loglik = as.numeric(logLik(m, REML = TRUE))
  )
}

# Sensitivity fit with site as a variance component: patients nested in sites.
sub <- d[d$responded == 1 & !is.na(d$life_satisfaction), ]
sub$gender <- droplevels(sub$gender)
m <- lmer(as.formula(sprintf("life_satisfaction ~ %s + (1 | site) + (1 | pid)", formula_rhs)),
          data = sub, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
fe <- fixef(m)
vc <- as.data.frame(VarCorr(m))
out$models$life_satisfaction_mixed_site_vc <- list(
  engine = "lme4::lmer REML, (1 | site) + (1 | pid)",
  n_obs = nrow(sub),
  params = setNames(as.list(unname(fe)), sm_name(names(fe))),
  se = setNames(as.list(unname(sqrt(diag(as.matrix(vcov(m)))))), sm_name(names(fe))),
  patient_var = vc$vcov[vc$grp == "pid"],
  site_var = vc$vcov[vc$grp == "site"],
  residual_var = vc$vcov[vc$grp == "Residual"],
  reml_loglik = as.numeric(logLik(m, REML = TRUE))
)

gee_fit <- function(sub, response, fam) {
  sub <- sub[order(sub$pid, sub$wave), ]
  sub$gender <- droplevels(sub$gender)
  f <- as.formula(sprintf("%s ~ %s", response, formula_rhs))
  m <- geeglm(f, data = sub, id = pid, family = fam, corstr = "exchangeable")
  co <- summary(m)$coefficients
  list(
    engine = sprintf("geepack::geeglm %s exchangeable", fam$family),
    n_obs = nrow(sub),
    n_groups = length(unique(sub$pid)),
    params = setNames(as.list(unname(co[, "Estimate"])), sm_name(rownames(co))),
    se = setNames(as.list(unname(co[, "Std.err"])), sm_name(rownames(co))),
    alpha = unname(summary(m)$corr$Estimate),
    scale = unname(summary(m)$dispersion$Estimate)
  )
}

gp <- d[d$responded == 1 & !is.na(d$gp_visits), ]
out$models$gp_visits_gee_poisson <- gee_fit(gp, "gp_visits", poisson())
lon <- d[d$responded == 1 & !is.na(d$lonely), ]
lon$lonely_often <- as.integer(lon$lonely == 5)
out$models$lonely_gee <- gee_fit(lon, "lonely_often", binomial())

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "reference.json"))
cat("wrote", file.path(here, "reference.json"), "\n")
