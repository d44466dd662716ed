# Reference values of R/qtl2 0.43-5 for a multi-founder cross (8 founder alleles, zerosum), for
# tests/test_effects.py. Run from the repository root:
#
#   Rscript tests/data/qtl/make_rqtl2_do_fixtures.R tests/data/qtl /path/to/DOex.zip
#
# A small subset of R/qtl2's Diversity Outbred example, to keep the fixture small: the first 120
# mice, chromosomes 2 and 3, every 4th marker. Allele probabilities
# genoprob_to_alleleprob(calc_genoprob(., error_prob=0.002)) rounded to 5 decimals are written to
# do_alleleprobs.csv.xz and read back, so that R/qtl2 and the Python tests use the same numbers.
suppressMessages(library(qtl2))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
zip <- args[2]
wcsv <- function(x, name) write.csv(x, file.path(dir, name), row.names = FALSE)

DO <- read_cross2(zip)
DO <- DO[ind_ids(DO)[1:120], c("2", "3")]
keep <- unlist(lapply(DO$gmap, function(m) names(m)[seq(1, length(m), by = 4)]))
DO <- pull_markers(DO, keep)
apr <- genoprob_to_alleleprob(calc_genoprob(DO, error_prob = 0.002))
founders <- LETTERS[1:8]

# write the rounded probabilities (MARKER:ALLELE), the map, phenotype and sex
ids <- rownames(apr[["2"]])
cols <- list()
for (chr in names(apr)) for (mk in dimnames(apr[[chr]])[[3]]) for (a in founders)
  cols[[paste0(mk, ":", a)]] <- round(apr[[chr]][, a, mk], 5)
tab <- data.frame(id = ids, cols, check.names = FALSE)
con <- xzfile(file.path(dir, "do_alleleprobs.csv.xz"), "w")
write.csv(tab, con, row.names = FALSE)
close(con)
map <- data.frame(marker = unlist(lapply(DO$gmap, names)), chr = rep(names(DO$gmap), vapply(DO$gmap, length, 1)),
                  pos = unlist(DO$gmap, use.names = FALSE))
wcsv(map, "do_map.csv")
wcsv(data.frame(id = ids, OF_immobile_pct = DO$pheno[ids, 1]), "do_pheno.csv")
wcsv(data.frame(id = ids, male = as.numeric(DO$covar[ids, "Sex"] == "male")), "do_covar.csv")

# read them back as R/qtl2 objects
back <- read.csv(xzfile(file.path(dir, "do_alleleprobs.csv.xz")), check.names = FALSE, row.names = 1,
                 colClasses = c("character", rep("numeric", 8 * nrow(map))))
pr <- lapply(names(DO$gmap), function(chr) {
  mk <- map$marker[map$chr == chr]
  arr <- array(NA_real_, c(length(ids), 8, length(mk)), dimnames = list(ids, founders, mk))
  for (j in seq_along(mk)) arr[, , j] <- as.matrix(back[ids, paste0(mk[j], ":", founders)])
  arr
})
names(pr) <- names(DO$gmap)
attributes(pr)[c("crosstype", "is_x_chr", "alleles", "alleleprobs", "class")] <-
  attributes(apr)[c("crosstype", "is_x_chr", "alleles", "alleleprobs", "class")]

y <- setNames(DO$pheno[ids, 1], ids)
male <- cbind(male = setNames(as.numeric(DO$covar[ids, "Sex"] == "male"), ids))
kinship <- calc_kinship(pr, "loco")
long_coef <- function(res, label) {
  se <- attr(res, "SE")
  do.call(rbind, lapply(colnames(res), function(nm)
    data.frame(call = label, marker = rownames(res), coef = nm, value = res[, nm], se = se[, nm])))
}
wcsv(rbind(
  long_coef(scan1coef(pr[, "2"], y, kinship[["2"]], addcovar = male, se = TRUE), "zerosum"),
  long_coef(scan1blup(pr[, "2"], y, kinship[["2"]], addcovar = male, se = TRUE), "blup")
), "rqtl2_do_effects_2.csv")  # call, marker, coef, value, se
mk <- dimnames(pr[["2"]])[[3]][10]
f1 <- fit1(pr[["2"]][, , mk], y, kinship[["2"]], addcovar = male, se = TRUE)
wcsv(data.frame(marker = mk, name = c("lod", names(f1$coef), paste0("se_", names(f1$SE))),
                value = c(f1$lod, f1$coef, f1$SE)), "rqtl2_do_fit1.csv")
cat("DO fixtures written to", dir, "\n")
