module atrest.invalid/gocmp

go 1.19
