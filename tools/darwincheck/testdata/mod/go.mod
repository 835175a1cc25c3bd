module example.com/darwincheckfixture

go 1.26

require github.com/progrium/darwinkit v0.5.0
