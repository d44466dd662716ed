# R/qtl2 0.43-5's reading of the test crosses, for tests/test_cross.py.
# Run from this folder:  Rscript make_r_reference.R
# For each cross, writes r_reference/<name>_*.csv:
#   _geno.csv     chr, id, marker, code   (read_cross2's x$geno, long format)
#   _founder.csv  chr, founder, marker, code (x$founder_geno, when present)
#   _map.csv      chr, marker, gmap, pmap (x$gmap, x$pmap; pmap NA when absent)
#   _ind.csv      id, is_female, cross_info columns
#   _pheno.csv    x$pheno (write.csv)
#   _warnings.txt read_cross2's warnings, one a line
#   _summary.txt  print(summary(x))
suppressPackageStartupMessages(library(qtl2))
crosses <- c(iron_subset = "iron_subset.zip",
             tiny_f2 = "tiny_f2/tiny_f2.yaml",
             tiny_do = "tiny_do/tiny_do.json")
for (name in names(crosses)) {
    warns <- character(0)
    x <- withCallingHandlers(read_cross2(crosses[[name]]),
                             warning = function(w) { warns <<- c(warns, conditionMessage(w))
                                                     invokeRestart("muffleWarning") })
    out <- function(suffix) file.path("r_reference", paste0(name, suffix))
    long <- function(mats, rowname) do.call(rbind, lapply(names(mats), function(chr) {
        m <- mats[[chr]]
        data.frame(chr = chr, row = rep(rownames(m), ncol(m)),
                   marker = rep(colnames(m), each = nrow(m)), code = as.vector(m))
    }))
    g <- long(x$geno); names(g)[2] <- "id"
    write.csv(g, out("_geno.csv"), row.names = FALSE)
    if (!is.null(x$founder_geno)) {
        f <- long(x$founder_geno); names(f)[2] <- "founder"
        write.csv(f, out("_founder.csv"), row.names = FALSE)
    }
    map <- do.call(rbind, lapply(names(x$gmap), function(chr)
        data.frame(chr = chr, marker = names(x$gmap[[chr]]), gmap = unname(x$gmap[[chr]]),
                   pmap = if (is.null(x$pmap)) NA else unname(x$pmap[[chr]]))))
    write.csv(map, out("_map.csv"), row.names = FALSE)
    ind <- data.frame(id = names(x$is_female), is_female = x$is_female)
    if (ncol(x$cross_info) > 0) ind <- cbind(ind, x$cross_info)
    write.csv(ind, out("_ind.csv"), row.names = FALSE)
    if (!is.null(x$pheno)) write.csv(x$pheno, out("_pheno.csv"))
    writeLines(warns, out("_warnings.txt"))
    writeLines(capture.output(print(summary(x))), out("_summary.txt"))
}
