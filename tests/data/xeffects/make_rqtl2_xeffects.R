# R/qtl2 0.43-5 references for the effects on the X chromosome (tests/test_xeffects.py).
# Run from the repository root:  Rscript tests/data/xeffects/make_rqtl2_xeffects.R
suppressMessages(library(qtl2))
dir <- "tests/data/xeffects"
wcsv <- function(x, name) write.csv(x, file.path(dir, name), row.names = FALSE)
wxz <- function(x, name) { con <- xzfile(file.path(dir, name), "w"); write.csv(x, con, row.names = FALSE); close(con) }
cross <- read_cross2(file.path(dir, "iron_x.zip"))
map <- insert_pseudomarkers(cross$gmap, step = 5)           # X: DXMit16, DXMit186 and pseudomarkers cX.loc*
pr <- calc_genoprob(cross, map, error_prob = 0.002)
K <- calc_kinship(pr, "loco")                              # use_allele_probs = TRUE, omit_x = FALSE
Xcovar <- get_x_covar(cross)                               # sex, direction (F2, both sexes and directions)
y <- cross$pheno[, "liver"]
sex <- cbind(sex = (cross$covar$sex == "m") * 1)
rownames(sex) <- rownames(cross$covar)

# inputs for the engine tests: X probabilities (long: id, marker, genotype, prob), kinship of X, X covariates
pX <- pr[["X"]]
wxz(data.frame(id = rep(dimnames(pX)[[1]], times = prod(dim(pX)[2:3])),
                genotype = rep(rep(dimnames(pX)[[2]], each = dim(pX)[1]), times = dim(pX)[3]),
                marker = rep(dimnames(pX)[[3]], each = prod(dim(pX)[1:2])),
                prob = as.vector(pX)), "rqtl2_probs_X.csv.xz")
wcsv(data.frame(marker = names(map[["X"]]), chr = "X", pos = as.vector(map[["X"]])), "rqtl2_map_X.csv")
kX <- K[["X"]]
wxz(data.frame(id = rownames(kX), kX, check.names = FALSE), "rqtl2_kinship_X.csv.xz")
wcsv(data.frame(id = rownames(Xcovar), Xcovar, check.names = FALSE), "rqtl2_xcovar.csv")
wcsv(data.frame(id = names(y), liver = y, sex = sex[names(y), 1]), "rqtl2_pheno.csv")

# est_herit with the X covariates: the null model of X (h2 on R/qtl2's 2K scale)
h <- est_herit(y, kX, addcovar = Xcovar)
wcsv(data.frame(hsq = as.vector(h)), "rqtl2_hsq_X.csv")

long_coef <- function(res, label) {
  se <- attr(res, "SE")
  do.call(rbind, lapply(colnames(res), function(nm)
    data.frame(call = label, marker = rownames(res), coef = nm, value = res[, nm], se = se[, nm])))
}
wcsv(rbind(
  long_coef(scan1coef(pr[, "X"], y, kX, nullcovar = Xcovar, se = TRUE), "zerosum"),
  long_coef(scan1coef(pr[, "X"], y, kX, nullcovar = Xcovar, se = TRUE, zerosum = FALSE), "plain")
), "rqtl2_scan1coef_X.csv")                                # call, marker, coef, value, se
wcsv(long_coef(scan1blup(pr[, "X"], y, kX, nullcovar = Xcovar, se = TRUE), "blup"), "rqtl2_scan1blup_X.csv")
# scan1blup's null fit in R/qtl2 0.43-5 is Rcpp_fitLMM(values, U'y, cbind(U'addcovar, nullcovar)): nullcovar is
# not rotated (R/qtl2 scan1blup.R), so its h2 is not est_herit's; this recomputes the h2 it used
kd <- decomp_kinship(qtl2:::double_kinship(kX))
hb <- qtl2:::Rcpp_fitLMM(kd$values, kd$vectors %*% y, cbind(kd$vectors %*% cbind(intercept = rep(1, length(y))), Xcovar),
                         reml = TRUE, check_boundary = TRUE, tol = 1e-12)$hsq
wcsv(data.frame(hsq = hb), "rqtl2_scan1blup_hsq_X.csv")

f1 <- fit1(pr[["X"]][, , "DXMit186"], y, kX, nullcovar = Xcovar, se = TRUE)
wcsv(data.frame(name = c("lod", names(f1$coef), paste0("se_", names(f1$SE))),
                value = c(f1$lod, f1$coef, f1$SE)), "rqtl2_fit1_DXMit186.csv")
wcsv(data.frame(id = names(f1$fitted), fitted = f1$fitted, resid = f1$resid), "rqtl2_fit1_DXMit186_individuals.csv")
# the same position in the X scan: scan1 with Xcovar gives fit1's LOD
s <- scan1(pr[, "X"], y, kX, Xcovar = Xcovar)
wcsv(data.frame(marker = rownames(s), lod = s[, 1]), "rqtl2_scan1_X.csv")
